//! A build's whole log over HTTP, for anyone who may view the build: streamed, with Range
//! requests answered, saved as `PROJECT-build-NUMBER.log`.

use app::error::AppError;
use app::ssr::access;
use app::ssr::builds::logs;
use app::ssr::request::Visitor;
use app::ssr::state::AppState;
use app::types::Permission;
use axum::Extension;
use axum::extract::{Path, Request, State};
use axum::response::Response;

use crate::http::artifacts::attachment;
use crate::http::plain_routes::{context, error_response};

/// `GET /projects/{slug}/builds/{number}/build.log`.
pub async fn download(
    State(state): State<AppState>,
    Extension(visitor): Extension<Visitor>,
    Path((slug, number)): Path<(String, String)>,
    request: Request,
) -> Response {
    let ctx = context(state, visitor);
    let found = async {
        let Ok(number) = number.parse::<i32>() else {
            return Err(AppError::NotFound);
        };
        let (_, project, build) = access::build(&ctx, &slug, number, Permission::View).await?;
        let path = logs::path(&ctx.state.data_dir, project.id, build.number);
        Ok::<_, AppError>((path, format!("{}-build-{}.log", project.slug, build.number)))
    }
    .await;
    let (path, name) = match found {
        Ok(found) => found,
        Err(error) => return error_response(&error),
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
