//! A build's whole log over HTTP, for anyone who may view the build: streamed, with Range
//! requests answered, saved as `PROJECT-build-NUMBER.log`.

use app::error::AppError;
use app::ssr::builds::logs;
use app::ssr::policy::{Action, Object};
use app::ssr::projects;
use app::ssr::request::{RequestContext, Visitor};
use app::ssr::state::AppState;
use app::types::Permission;
use axum::Extension;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::artifacts::attachment;

/// `GET /projects/{slug}/builds/{number}/build.log`.
pub async fn download(
    State(state): State<AppState>,
    Extension(visitor): Extension<Visitor>,
    Path((slug, number)): Path<(String, String)>,
    request: Request,
) -> Response {
    let ctx = RequestContext {
        state,
        visitor,
        session: None,
    };
    let found = async {
        let Ok(number) = number.parse::<i32>() else {
            return Err(AppError::NotFound);
        };
        let db = &ctx.state.db;
        let project = projects::by_slug(db, &slug).await?;
        let user = ctx.visitor.user.as_ref().map(|u| u.id);
        let object = Object::Project(projects::facts(db, &project, user).await?);
        let view = Action::Project(Permission::View);
        ctx.authorize_on(object, view, view, "project", &project.id.to_string())
            .await?;
        let build = app::ssr::builds::by_number(db, &project, number).await?;
        let path = logs::path(&ctx.state.data_dir, project.id, build.number);
        Ok::<_, AppError>((path, format!("{}-build-{}.log", project.slug, build.number)))
    }
    .await;
    let (path, name) = match found {
        Ok(found) => found,
        Err(error) => {
            let status =
                StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return (status, error.to_string()).into_response();
        }
    };
    attachment(
        &path,
        &name,
        "text/plain; charset=utf-8",
        request,
        "This build has no log: it printed nothing yet, or it was archived.",
    )
    .await
}
