//! The access-control matrix: every role against every project action, each cell checked
//! for its answer (allowed, 401, 403 or 404) and for the audit row a refusal leaves.

use crate::groups::{add_member, create_group};
use crate::helpers::{Client, TestApp, audit_rows, on_each_database};
use crate::projects::create_project;
use reqwest::StatusCode;

on_each_database!(every_role_gets_what_the_policy_says_for_every_project_action);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Owner,
    GroupMember,
    GroupMaintainer,
    OtherUser,
    Admin,
    Anonymous,
    DisabledUser,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProjectAction {
    ViewPage,
    View,
    Clone,
    Configure,
    Export,
    AuditTrail,
    Update,
    Share,
    Transfer,
    Archive,
    Delete,
}

const ROLES: [Role; 7] = [
    Role::Owner,
    Role::GroupMember,
    Role::GroupMaintainer,
    Role::OtherUser,
    Role::Admin,
    Role::Anonymous,
    Role::DisabledUser,
];

const ACTIONS: [ProjectAction; 11] = [
    ProjectAction::ViewPage,
    ProjectAction::View,
    ProjectAction::Clone,
    ProjectAction::Configure,
    ProjectAction::Export,
    ProjectAction::AuditTrail,
    ProjectAction::Update,
    ProjectAction::Share,
    ProjectAction::Transfer,
    ProjectAction::Archive,
    ProjectAction::Delete,
];

/// The specification: the project's group may `view`, others nothing.
fn expected(role: Role, action: ProjectAction) -> StatusCode {
    use ProjectAction::*;
    match role {
        Role::Owner | Role::Admin => StatusCode::OK,
        Role::GroupMember | Role::GroupMaintainer => match action {
            ViewPage | View | Clone | Export => StatusCode::OK,
            Configure | AuditTrail | Update | Share | Transfer | Archive | Delete => {
                StatusCode::FORBIDDEN
            }
        },
        Role::OtherUser => StatusCode::NOT_FOUND,
        // Without a session nothing is revealed either way; pages send to the login page.
        Role::Anonymous | Role::DisabledUser if matches!(action, ViewPage | Export) => {
            StatusCode::SEE_OTHER
        }
        Role::Anonymous | Role::DisabledUser => StatusCode::UNAUTHORIZED,
    }
}

async fn attempt(client: &Client, action: ProjectAction, slug: &str, group: &str) -> StatusCode {
    let clone_slug = format!("{slug}-copy");
    let form: Vec<(&str, &str)> = match action {
        ProjectAction::ViewPage => {
            return client.get(&format!("/projects/{slug}")).await.status();
        }
        ProjectAction::Export => {
            return client.get(&format!("/export/{slug}")).await.status();
        }
        ProjectAction::Configure => vec![("slug", slug), ("machine", "qemuarm64")],
        ProjectAction::View => vec![("slug", slug)],
        ProjectAction::Clone => vec![("slug", slug), ("name", "Copy"), ("new_slug", &clone_slug)],
        ProjectAction::AuditTrail => vec![("slug", slug), ("page", "1")],
        ProjectAction::Update => vec![("slug", slug), ("name", "Renamed")],
        ProjectAction::Share => vec![
            ("slug", slug),
            ("group", group),
            ("other_permissions[view]", "true"),
        ],
        ProjectAction::Transfer => vec![("slug", slug), ("owner", "other")],
        ProjectAction::Archive => vec![("slug", slug), ("archived", "true")],
        ProjectAction::Delete => vec![("slug", slug), ("confirm", slug)],
    };
    client.call(endpoint(action), &form).await.status()
}

/// The server function an action calls.
fn endpoint(action: ProjectAction) -> &'static str {
    match action {
        ProjectAction::ViewPage | ProjectAction::Export => "(a page)",
        ProjectAction::Configure => "save_basics",
        ProjectAction::View => "project",
        ProjectAction::Clone => "clone_project",
        ProjectAction::AuditTrail => "project_audit",
        ProjectAction::Update => "update_project",
        ProjectAction::Share => "set_project_sharing",
        ProjectAction::Transfer => "transfer_project",
        ProjectAction::Archive => "archive_project",
        ProjectAction::Delete => "delete_project",
    }
}

async fn every_role_gets_what_the_policy_says_for_every_project_action(app: TestApp) {
    let group = create_group(&app, "Matrix").await;
    for name in ["owner", "member", "maintainer", "other", "disabled"] {
        app.create_user(name, &format!("{name}-password"), false)
            .await;
    }
    add_member(&app, &group, "owner", false).await;
    add_member(&app, &group, "member", false).await;
    add_member(&app, &group, "maintainer", true).await;
    add_member(&app, &group, "disabled", false).await;

    let admin = app.admin().await;
    let owner = app.logged_in("owner", "owner-password").await;
    let disabled = app.logged_in("disabled", "disabled-password").await;
    let disabled_id = admin
        .call("list_users", &[("search", "disabled"), ("page", "1")])
        .await
        .json::<serde_json::Value>()
        .await
        .unwrap()["items"][0]["id"]
        .to_string();
    let off = admin
        .call(
            "change_user",
            &[("id", &disabled_id), ("change", "Disable")],
        )
        .await;
    assert_eq!(off.status(), StatusCode::OK);

    let clients = [
        (Role::Owner, owner),
        (
            Role::GroupMember,
            app.logged_in("member", "member-password").await,
        ),
        (
            Role::GroupMaintainer,
            app.logged_in("maintainer", "maintainer-password").await,
        ),
        (
            Role::OtherUser,
            app.logged_in("other", "other-password").await,
        ),
        (Role::Admin, admin),
        (Role::Anonymous, app.client()),
        (Role::DisabledUser, disabled),
    ];
    let owner = &clients[0].1;
    let mut failures = Vec::new();
    for role in ROLES {
        let client = &clients.iter().find(|(r, _)| *r == role).unwrap().1;
        for action in ACTIONS {
            let slug = format!("m-{role:?}-{action:?}").to_lowercase();
            let project = create_project(
                owner,
                &slug,
                &[("group", &group), ("group_permissions[view]", "true")],
            )
            .await;
            let id = project["id"].to_string();
            let path = format!("/api/{}", endpoint(action));
            let before = audit_rows(&app, "access.denied", "request", &path)
                .await
                .len();
            let status = attempt(client, action, &slug, &group).await;
            let want = expected(role, action);
            if status != want {
                failures.push(format!("{role:?} {action:?}: got {status}, want {want}"));
            }
            // Without a session the request is refused before the project is looked up,
            // so the refusal names the request rather than the project.
            let denials = if want == StatusCode::UNAUTHORIZED {
                let rows = audit_rows(&app, "access.denied", "request", &path).await;
                rows[before.min(rows.len())..].to_vec()
            } else {
                audit_rows(&app, "access.denied", "project", &id).await
            };
            let denied = !want.is_success();
            let redirected = want == StatusCode::SEE_OTHER;
            let rows_wanted = usize::from(denied && !redirected);
            if denials.len() != rows_wanted {
                failures.push(format!(
                    "{role:?} {action:?}: {} denial rows, want {rows_wanted}: {denials:?}",
                    denials.len()
                ));
            }
            let actor = match role {
                Role::Anonymous | Role::DisabledUser => "anonymous",
                Role::GroupMember => "member",
                Role::GroupMaintainer => "maintainer",
                Role::OtherUser => "other",
                Role::Owner => "owner",
                Role::Admin => "admin",
            };
            if let Some((who, _)) = denials.first().filter(|(who, _)| who != actor) {
                failures.push(format!(
                    "{role:?} {action:?}: denial by {who}, want {actor}"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "matrix cells failed:\n{}",
        failures.join("\n")
    );
}
