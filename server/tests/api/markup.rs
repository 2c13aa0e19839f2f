//! User text stays text: a corpus of hostile strings put into every field a user controls
//! and looked for, unescaped, in every page that shows it, `<title>` and `<textarea>`
//! included (the elements whose content the renderer writes out as it is).

use reqwest::StatusCode;

use crate::builds::ok;
use crate::helpers::{TestApp, on_each_database};

on_each_database!(hostile_text_is_escaped_on_every_page_that_shows_it);

/// Strings that end an element or start markup when written out unescaped.
const CORPUS: [&str; 9] = [
    "Demo </title><script>alert(7)</script>",
    "</textarea><img src=x onerror=alert(8)>",
    "</script><script>alert(9)</script>",
    "<!-- open comment",
    "]]><svg onload=alert(10)>",
    "\"'><a href=\"https://evil.example\">quoted</a>",
    "<meta http-equiv=\"refresh\" content=\"0;url=https://evil.example\">",
    "nul \u{0} and <b>bold</b>",
    "ansi \u{1b}[31mred\u{1b}[0m and osc \u{1b}]8;;https://evil.example\u{7}<i>link</i>\u{1b}]8;;\u{7}",
];

/// A page's HTML, which must be served.
async fn page(client: &crate::helpers::Client, path: &str) -> String {
    let response = client.get(path).await;
    let status = response.status();
    let html = response.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{path}: {html}");
    html
}

async fn hostile_text_is_escaped_on_every_page_that_shows_it(app: TestApp) {
    let admin = app.admin().await;
    for (i, payload) in CORPUS.iter().enumerate() {
        let slug = format!("hostile-{i}");
        // A name the domain refuses (a control character) is refused as a field error.
        let created = admin
            .call(
                "create_project",
                &[("slug", &slug), ("name", payload), ("description", payload)],
            )
            .await;
        if created.status() == StatusCode::UNPROCESSABLE_ENTITY {
            let again = admin
                .call(
                    "create_project",
                    &[
                        ("slug", &slug),
                        ("name", "Hostile"),
                        ("description", payload),
                    ],
                )
                .await;
            if again.status() == StatusCode::UNPROCESSABLE_ENTITY {
                crate::projects::create_project(&admin, &slug, &[]).await;
            }
        }
        let project = ok(&admin, "project", &[("slug", &slug)]).await;
        assert_eq!(project["slug"], slug);
        let variable = [
            ("slug", slug.as_str()),
            ("name", "GREETING"),
            ("kind", "string"),
            ("value", payload),
        ];
        // A value with a NUL is refused, naming the field; the others stand.
        let set = admin.call("set_variable", &variable).await;
        if payload.contains('\0') {
            crate::helpers::assert_invalid(set, "value").await;
        } else {
            assert_eq!(set.status(), StatusCode::OK, "set_variable {payload:?}");
        }
        // YAML takes no control characters, even in a comment.
        let comment: String = payload.chars().filter(|c| !c.is_control()).collect();
        let source = format!(
            "# {comment}\nname: hostile\nfields: {{ note: \"</textarea><img src=x onerror=alert(4)>\" }}\nprocess:\n  wait: 1s\n"
        );
        ok(
            &admin,
            "save_definition",
            &[("project", &slug), ("source", &source)],
        )
        .await;

        let pages = [
            format!("/projects/{slug}"),
            format!("/projects/{slug}/settings"),
            format!("/projects/{slug}/configuration"),
            format!("/processes/definitions?project={slug}"),
            format!("/processes/definitions/edit?project={slug}&name=hostile"),
            "/projects".to_owned(),
        ];
        for path in &pages {
            let html = page(&admin, path).await;
            for hostile in [*payload, "</textarea><img src=x onerror=alert(4)>"] {
                if hostile.contains('<') {
                    assert!(
                        !html.contains(hostile),
                        "{path} shows {hostile:?} as markup"
                    );
                }
            }
            assert_eq!(html.matches("<title>").count(), 1, "{path} has one title");
            assert!(!html.contains("<script>alert"), "{path}");
        }
    }
}
