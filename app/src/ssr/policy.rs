//! The one permission policy: every page, server function, download and live topic asks
//! [`can`] before acting.

use crate::types::CurrentUser;

/// Something a user may try to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// See Kiln's pages at all.
    UseKiln,
    /// Change one's own profile and password.
    EditOwnProfile,
    /// List, create, disable, enable, reset and promote users.
    ManageUsers,
    /// Read and export the audit log.
    ViewAudit,
    /// Change instance-wide settings, such as the audit retention.
    ConfigureInstance,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Self::UseKiln => "use_kiln",
            Self::EditOwnProfile => "edit_own_profile",
            Self::ManageUsers => "manage_users",
            Self::ViewAudit => "view_audit",
            Self::ConfigureInstance => "configure_instance",
        }
    }
}

/// Whether `user` (None: anonymous) may do `action`.
///
/// Disabled users never reach here: their sessions are ended and they cannot log in.
pub fn can(user: Option<&CurrentUser>, action: Action) -> bool {
    match (user, action) {
        (None, _) => false,
        (Some(_), Action::UseKiln | Action::EditOwnProfile) => true,
        (Some(user), Action::ManageUsers | Action::ViewAudit | Action::ConfigureInstance) => {
            user.is_admin
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::UserId;

    fn user(is_admin: bool) -> CurrentUser {
        CurrentUser {
            id: UserId(1),
            username: "u".into(),
            display_name: "U".into(),
            email: None,
            is_admin,
        }
    }

    #[test]
    fn matrix() {
        let admin = user(true);
        let member = user(false);
        let all = [
            Action::UseKiln,
            Action::EditOwnProfile,
            Action::ManageUsers,
            Action::ViewAudit,
            Action::ConfigureInstance,
        ];
        for action in all {
            assert!(!can(None, action), "anonymous may not {action:?}");
            assert!(can(Some(&admin), action), "admin may {action:?}");
        }
        assert!(can(Some(&member), Action::UseKiln));
        assert!(can(Some(&member), Action::EditOwnProfile));
        assert!(!can(Some(&member), Action::ManageUsers));
        assert!(!can(Some(&member), Action::ViewAudit));
        assert!(!can(Some(&member), Action::ConfigureInstance));
    }
}
