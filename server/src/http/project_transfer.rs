//! Project files over plain HTTP: the TOML download, and the upload form's target, which
//! works without JavaScript and sends the browser on to the new project (or back to the
//! form with the reason it was refused).

use app::error::AppError;
use app::ssr::access;
use app::ssr::policy::Action;
use app::ssr::project_file::{self, PROJECT_FILE_MAX_BYTES};
use app::ssr::request::Visitor;
use app::ssr::state::AppState;
use app::types::Permission;
use axum::Extension;

use crate::http::plain_routes::{context, error_response};
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};

/// `GET /export/{slug}`: the project file, for anyone who may view the project.
pub async fn export(
    State(state): State<AppState>,
    Extension(visitor): Extension<Visitor>,
    Path(slug): Path<String>,
) -> Response {
    let ctx = context(state, visitor);
    let result = async {
        let (_, project) = access::project(&ctx, &slug, Action::Project(Permission::View)).await?;
        let text = project_file::export(&ctx.state.db, &project).await?;
        Ok::<_, AppError>((project.slug, text))
    }
    .await;
    match result {
        Ok((slug, text)) => {
            let disposition = format!("attachment; filename=\"{slug}.toml\"");
            let mut response = text.into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/toml; charset=utf-8"),
            );
            if let Ok(value) = HeaderValue::from_str(&disposition) {
                headers.insert(header::CONTENT_DISPOSITION, value);
            }
            response
        }
        Err(error) => error_response(&error),
    }
}

/// The uploaded file's text and the slug field of the import form.
async fn fields(mut form: Multipart) -> Result<(String, String), AppError> {
    let (mut file, mut slug) = (None, String::new());
    let unreadable = |_| AppError::invalid("file", "The upload could not be read.");
    while let Some(field) = form.next_field().await.map_err(unreadable)? {
        match field.name() {
            Some("file") => {
                let bytes = field.bytes().await.map_err(unreadable)?;
                if bytes.len() > PROJECT_FILE_MAX_BYTES {
                    return Err(AppError::invalid(
                        "file",
                        format!(
                            "The file is larger than {} KiB.",
                            PROJECT_FILE_MAX_BYTES / 1024
                        ),
                    ));
                }
                let text = String::from_utf8(bytes.to_vec())
                    .map_err(|_| AppError::invalid("file", "The file is not UTF-8 text."))?;
                file = Some(text);
            }
            Some("slug") => slug = field.text().await.map_err(unreadable)?,
            _ => {}
        }
    }
    let file = file
        .filter(|text| !text.is_empty())
        .ok_or_else(|| AppError::invalid("file", "Choose a project file to import."))?;
    Ok((file, slug))
}

/// `POST /import-project` (multipart: `file`, optional `slug`): on success, to the new
/// project; on refusal, back to the form with the message.
pub async fn import(
    State(state): State<AppState>,
    Extension(visitor): Extension<Visitor>,
    form: Multipart,
) -> Response {
    let ctx = context(state, visitor);
    let result = async {
        let user = ctx.authorize(Action::CreateProject).await?.clone();
        let (file, slug) = fields(form).await?;
        project_file::import(
            &ctx.state.db,
            &ctx.state.secrets,
            &ctx.actor(),
            &user,
            &file,
            &slug,
        )
        .await
    }
    .await;
    match result {
        Ok(project) => Redirect::to(&format!("/projects/{}", project.slug)).into_response(),
        Err(error @ (AppError::Invalid { .. } | AppError::Conflict { .. })) => {
            let message: String = error.message().chars().take(500).collect();
            let location = format!(
                "/import-project?error={}",
                app::url::encode_component(&message)
            );
            Redirect::to(&location).into_response()
        }
        Err(error) => error_response(&error),
    }
}
