//! The one permission policy: every page, server function, download and live topic asks
//! [`can`] before acting.
//!
//! The policy is a pure function of facts the caller loaded (who owns a project, whether the
//! user is in its group), so it is tested here as a table and cannot drift between callers.

use crate::types::{CurrentUser, Permission, Permissions, UserId};

/// Something a user may try to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// See Kiln's pages at all.
    UseKiln,
    /// Change one's own profile and password.
    EditOwnProfile,
    /// List, create, disable, enable, reset and promote users.
    ManageUsers,
    /// Read and export the whole audit log.
    ViewAudit,
    /// Change instance-wide settings, such as the audit retention.
    ConfigureInstance,
    /// Create, rename and delete groups, and choose their maintainers.
    ManageGroups,
    /// Create a project (owned by the creator).
    CreateProject,
    /// See a group and its members.
    ViewGroup,
    /// Add and remove a group's members.
    ManageGroupMembers,
    /// One of a project's permissions.
    Project(Permission),
    /// Change a project's permissions, group and owner; archive, delete; read its audit trail.
    AdministerProject,
    /// See the workers and participants pages.
    ViewWorkers,
    /// Create and revoke worker tokens; drain, resume and disconnect workers.
    ManageWorkers,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Self::UseKiln => "use_kiln",
            Self::EditOwnProfile => "edit_own_profile",
            Self::ManageUsers => "manage_users",
            Self::ViewAudit => "view_audit",
            Self::ConfigureInstance => "configure_instance",
            Self::ManageGroups => "manage_groups",
            Self::CreateProject => "create_project",
            Self::ViewGroup => "view_group",
            Self::ManageGroupMembers => "manage_group_members",
            Self::Project(permission) => permission.name(),
            Self::AdministerProject => "admin",
            Self::ViewWorkers => "view_workers",
            Self::ManageWorkers => "manage_workers",
        }
    }
}

/// What an action is done to, with the facts the policy needs about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Object {
    /// Kiln as a whole: pages, administration, creating things.
    Instance,
    Group(GroupFacts),
    Project(ProjectFacts),
}

/// A group as seen by the user asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupFacts {
    pub is_member: bool,
    pub is_maintainer: bool,
}

/// A project as seen by the user asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProjectFacts {
    pub owner: UserId,
    pub group_permissions: Permissions,
    pub other_permissions: Permissions,
    /// The user asking belongs to the project's group.
    pub in_group: bool,
}

/// Whether `user` (None: anonymous) may do `action` to `object`.
///
/// Disabled users never reach here: their sessions are ended and they cannot log in.
/// Administrators may do everything; an action that does not apply to the object is refused.
pub fn can(user: Option<&CurrentUser>, object: Object, action: Action) -> bool {
    let Some(user) = user else {
        return false;
    };
    if user.is_admin {
        return true;
    }
    match (object, action) {
        (
            Object::Instance,
            Action::UseKiln | Action::EditOwnProfile | Action::CreateProject | Action::ViewWorkers,
        ) => true,
        (Object::Group(group), Action::ViewGroup) => group.is_member,
        (Object::Group(group), Action::ManageGroupMembers) => group.is_maintainer,
        (Object::Project(project), action) if project.owner == user.id => {
            matches!(action, Action::Project(_) | Action::AdministerProject)
        }
        (Object::Project(project), Action::Project(permission)) => {
            project_permissions(project).has(permission)
        }
        _ => false,
    }
}

/// The permissions a non-owner gets: everyone's, plus the group's for its members.
fn project_permissions(project: ProjectFacts) -> Permissions {
    if project.in_group {
        project.other_permissions.union(project.group_permissions)
    } else {
        project.other_permissions
    }
}

/// Everything `user` may do with the project, for pages to show only what works.
pub fn project_access(
    user: Option<&CurrentUser>,
    project: ProjectFacts,
) -> crate::types::ProjectAccess {
    let object = Object::Project(project);
    let has = |permission| can(user, object, Action::Project(permission));
    crate::types::ProjectAccess {
        permissions: Permissions {
            view: has(Permission::View),
            build: has(Permission::Build),
            configure: has(Permission::Configure),
            download: has(Permission::Download),
        },
        admin: can(user, object, Action::AdministerProject),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: i64, is_admin: bool) -> CurrentUser {
        CurrentUser {
            id: UserId(id),
            username: format!("u{id}"),
            display_name: "U".into(),
            email: None,
            is_admin,
        }
    }

    const INSTANCE_ACTIONS: [Action; 9] = [
        Action::UseKiln,
        Action::EditOwnProfile,
        Action::ManageUsers,
        Action::ViewAudit,
        Action::ConfigureInstance,
        Action::ManageGroups,
        Action::CreateProject,
        Action::ViewWorkers,
        Action::ManageWorkers,
    ];

    #[test]
    fn instance_actions() {
        let admin = user(1, true);
        let member = user(2, false);
        for action in INSTANCE_ACTIONS {
            assert!(
                !can(None, Object::Instance, action),
                "anonymous may not {action:?}"
            );
            assert!(
                can(Some(&admin), Object::Instance, action),
                "admin may {action:?}"
            );
            let everyone = matches!(
                action,
                Action::UseKiln
                    | Action::EditOwnProfile
                    | Action::CreateProject
                    | Action::ViewWorkers
            );
            assert_eq!(
                can(Some(&member), Object::Instance, action),
                everyone,
                "{action:?}"
            );
        }
    }

    #[test]
    fn group_actions() {
        let someone = user(2, false);
        let facts = |is_member, is_maintainer| {
            Object::Group(GroupFacts {
                is_member,
                is_maintainer,
            })
        };
        assert!(!can(Some(&someone), facts(false, false), Action::ViewGroup));
        assert!(can(Some(&someone), facts(true, false), Action::ViewGroup));
        assert!(!can(
            Some(&someone),
            facts(true, false),
            Action::ManageGroupMembers
        ));
        assert!(can(
            Some(&someone),
            facts(true, true),
            Action::ManageGroupMembers
        ));
        assert!(!can(
            Some(&someone),
            facts(true, true),
            Action::ManageGroups
        ));
        assert!(can(
            Some(&user(1, true)),
            facts(false, false),
            Action::ManageGroupMembers
        ));
    }

    #[test]
    fn project_permissions_are_owner_group_others() {
        let owner = user(1, false);
        let member = user(2, false);
        let other = user(3, false);
        let admin = user(4, true);
        let view_build = Permissions {
            view: true,
            build: true,
            ..Permissions::NONE
        };
        let view = Permissions {
            view: true,
            ..Permissions::NONE
        };
        let facts = |in_group| ProjectFacts {
            owner: owner.id,
            group_permissions: view_build,
            other_permissions: view,
            in_group,
        };
        let all = Permissions {
            view: true,
            build: true,
            configure: true,
            download: true,
        };
        let access = |who: Option<&CurrentUser>, in_group| project_access(who, facts(in_group));
        assert_eq!(access(Some(&owner), false).permissions, all);
        assert!(access(Some(&owner), false).admin);
        assert_eq!(access(Some(&admin), false).permissions, all);
        assert!(access(Some(&admin), false).admin);
        assert_eq!(access(Some(&member), true).permissions, view_build);
        assert!(!access(Some(&member), true).admin);
        assert_eq!(access(Some(&other), false).permissions, view);
        assert_eq!(access(None, false).permissions, Permissions::NONE);
        let private = ProjectFacts {
            other_permissions: Permissions::NONE,
            ..facts(false)
        };
        assert!(!can(
            Some(&other),
            Object::Project(private),
            Action::Project(Permission::View)
        ));
        // Instance actions do not apply to projects.
        assert!(!can(
            Some(&member),
            Object::Project(facts(true)),
            Action::ManageUsers
        ));
    }
}
