//! Artifacts over HTTP: a worker's upload of a file its build step produced, and the
//! download a user with `download` makes of it, streamed with Range support.

use std::path::{Path as FilePath, PathBuf};

use app::error::AppError;
use app::ssr::builds::artifacts::{self, MAX_ARTIFACT_BYTES, Upload, Uploader};
use app::ssr::policy::{Action, Object};
use app::ssr::projects;
use app::ssr::request::Visitor;
use app::ssr::state::AppState;
use app::ssr::workers::protocol::Attempt;
use app::ssr::workers::tokens;
use app::types::Permission;
use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tower::ServiceExt;
use tower_http::services::ServeFile;

use crate::http::plain_routes::{context, error_response};
use crate::http::worker_socket::bearer;

fn refuse(status: StatusCode, message: impl Into<String>) -> Response {
    (status, message.into()).into_response()
}

/// What a worker says of the file it sends.
#[derive(Debug, Deserialize)]
pub struct UploadQuery {
    name: String,
    size: u64,
    sha256: String,
}

/// A temporary file removed when dropped, unless it was moved into place.
struct Partial(PathBuf);

impl Drop for Partial {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_file(&self.0)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(%error, path = %self.0.display(), "cannot remove a partial upload");
        }
    }
}

/// `PUT /worker/artifacts/{workitem}/{attempt}?name=&size=&sha256=`: stores the body as an
/// artifact of the build whose step the calling worker holds. The body must be exactly
/// `size` bytes with that SHA-256; anything else leaves nothing behind.
pub async fn upload(
    State(state): State<AppState>,
    Path((workitem, attempt)): Path<(i64, i32)>,
    Query(query): Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let uploader = match bearer(&headers) {
        Some(secret) if state.workers.is_embedded_secret(secret) => Uploader::Embedded,
        Some(secret) => match tokens::authenticate(&state.db, secret).await {
            Ok(Some(id)) => Uploader::Token(id),
            Ok(None) => {
                return refuse(
                    StatusCode::UNAUTHORIZED,
                    "The worker token is not valid or has been revoked.",
                );
            }
            Err(error) => return error_response(&error),
        },
        None => {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "A worker token is required: Authorization: Bearer TOKEN",
            );
        }
    };
    if query.size > MAX_ARTIFACT_BYTES {
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "size: an artifact may be at most {} GiB.",
                MAX_ARTIFACT_BYTES >> 30
            ),
        );
    }
    if let Err(error) = artifacts::check_upload(&query.name, query.size, &query.sha256) {
        return error_response(&error);
    }
    let declared_length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared_length.is_some_and(|length| length != query.size) {
        return refuse(
            StatusCode::BAD_REQUEST,
            "size: the body's Content-Length differs from the size given.",
        );
    }
    let attempt = Attempt { workitem, attempt };
    let (build, worker) = match artifacts::upload_target(&state.db, uploader, attempt).await {
        Ok(target) => target,
        Err(AppError::Forbidden) => {
            return refuse(
                StatusCode::FORBIDDEN,
                "This worker does not hold that build step; it may upload only while it runs it.",
            );
        }
        Err(error) => return error_response(&error),
    };
    let Some(_slot) = state.workers.start_upload(&worker) else {
        return refuse(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "A worker uploads at most {} files at once; send this one when another is done.",
                app::ssr::workers::hub::MAX_UPLOADS_PER_WORKER
            ),
        );
    };
    if let Err(error) = artifacts::check_room(&state.db, &build, &query.name, query.size).await {
        return error_response(&error);
    }
    let dir = artifacts::dir(&state.data_dir, build.project_id, build.number);
    let received = match receive(&dir, body, query.size).await {
        Ok(received) => received,
        Err(response) => return response,
    };
    if received.sha256 != query.sha256 {
        return refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "sha256: the body's SHA-256 is {}, not the {} given.",
                received.sha256, query.sha256
            ),
        );
    }
    let upload = Upload {
        name: &query.name,
        size: query.size,
        sha256: &query.sha256,
        temp: &received.file.0,
    };
    match artifacts::record(&state.db, &state.data_dir, &worker, &build, upload).await {
        Ok(row) => (
            StatusCode::CREATED,
            axum::Json(serde_json::json!({ "id": row.id })),
        )
            .into_response(),
        Err(error) => error_response(&error),
    }
}

/// A body written to a temporary file, and its hash.
struct Received {
    file: Partial,
    sha256: String,
}

/// Writes `body` into a new temporary file in `dir`, refusing more than `size` bytes or
/// fewer.
async fn receive(dir: &FilePath, body: Body, size: u64) -> Result<Received, Response> {
    let internal = |error: std::io::Error, what: &str| {
        tracing::error!(%error, dir = %dir.display(), "cannot {what} an upload");
        refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Kiln could not store the upload.",
        )
    };
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| internal(e, "make the directory of"))?;
    let name = format!(".upload-{:016x}", rand::random::<u64>());
    let partial = Partial(dir.join(name));
    let mut file = tokio::fs::File::create(&partial.0)
        .await
        .map_err(|e| internal(e, "create"))?;
    let mut hasher = Sha256::new();
    let mut written: u64 = 0;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|error| {
            refuse(
                StatusCode::BAD_REQUEST,
                format!("The upload broke off after {written} bytes: {error}"),
            )
        })?;
        written += chunk.len() as u64;
        if written > size {
            return Err(refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("size: the body is longer than the {size} bytes given."),
            ));
        }
        hasher.update(&chunk);
        file.write_all(&chunk)
            .await
            .map_err(|e| internal(e, "write"))?;
    }
    if written != size {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            format!("size: the body ended after {written} of the {size} bytes given."),
        ));
    }
    file.sync_all().await.map_err(|e| internal(e, "save"))?;
    Ok(Received {
        file: partial,
        sha256: hex::encode(hasher.finalize()),
    })
}

/// `Content-Disposition` for a download saved as `name`: a plain ASCII fallback, and the
/// exact name percent-encoded.
fn disposition(name: &str) -> HeaderValue {
    let fallback: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    HeaderValue::from_str(&format!(
        "attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// `GET /projects/{slug}/builds/{number}/artifacts/{id}`: the artifact's bytes for a user
/// with `download` on the project, with Range requests answered.
pub async fn download(
    State(state): State<AppState>,
    Extension(visitor): Extension<Visitor>,
    Path((slug, number, id)): Path<(String, String, String)>,
    request: Request,
) -> Response {
    let ctx = context(state, visitor);
    let found = async {
        let (Ok(number), Ok(id)) = (number.parse::<i32>(), id.parse::<i64>()) else {
            return Err(AppError::NotFound);
        };
        let db = &ctx.state.db;
        let project = projects::by_slug(db, &slug).await?;
        let user = ctx.visitor.user.as_ref().map(|u| u.id);
        let object = Object::Project(projects::facts(db, &project, user).await?);
        ctx.authorize_on(
            object,
            Action::Project(Permission::View),
            Action::Project(Permission::Download),
            "artifact",
            &id.to_string(),
        )
        .await?;
        let build = app::ssr::builds::by_number(db, &project, number).await?;
        let artifact = artifacts::find(db, &build, id).await?;
        let path = artifacts::file(&ctx.state.data_dir, project.id, build.number, artifact.id);
        Ok::<_, AppError>((path, artifact.name))
    }
    .await;
    let (path, name) = match found {
        Ok(found) => found,
        Err(error) => return error_response(&error),
    };
    attachment(
        &path,
        &name,
        "application/octet-stream",
        request,
        "The artifact's file is gone: it has expired or was removed.",
    )
    .await
}

/// The file at `path`, saved as `name`, streamed with Range requests answered; `gone` is
/// the answer when it does not exist.
pub(crate) async fn attachment(
    path: &FilePath,
    name: &str,
    content_type: &'static str,
    request: Request,
    gone: &'static str,
) -> Response {
    let served = match ServeFile::new(path).oneshot(request).await {
        Ok(served) => served,
        Err(infallible) => match infallible {},
    };
    if served.status() == StatusCode::NOT_FOUND {
        return refuse(StatusCode::NOT_FOUND, gone);
    }
    let mut response = served.map(Body::new);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_DISPOSITION, disposition(name));
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_names_are_quoted_safely() {
        assert_eq!(
            disposition("core-image.wic"),
            "attachment; filename=\"core-image.wic\"; filename*=UTF-8''core-image.wic"
        );
        assert_eq!(
            disposition("a\"b\\c ü.log"),
            "attachment; filename=\"a_b_c _.log\"; filename*=UTF-8''a%22b%5Cc%20%C3%BC.log"
        );
    }
}
