//! Workers' replies, written together: the replies that arrive while one transaction writes
//! are written by the next, in one transaction, so a busy server commits once for many.

use sea_orm::DatabaseConnection;
use tokio::sync::{mpsc, oneshot};

use crate::error::AppError;
use crate::ssr::processes::instances::{self, Reply, ReplyRefused};
use crate::ssr::{begin_write, db_error};

/// The most replies written in one transaction.
const PER_TRANSACTION: usize = 256;

/// Replies waiting to be written before a worker's connection waits to queue its own.
const QUEUED: usize = 1024;

/// What became of a reply: the instance it was queued for, or why it was refused.
pub type Taken = Result<Result<i64, ReplyRefused>, AppError>;

struct Waiting {
    reply: Reply,
    answer: oneshot::Sender<Taken>,
}

/// The writer's inbox; cheap to clone. The writer stops when the last clone is dropped.
#[derive(Clone)]
pub struct Replies {
    queue: mpsc::Sender<Waiting>,
}

impl Replies {
    /// Starts the writer on the runtime this is called from.
    pub fn start(db: DatabaseConnection) -> Self {
        let (queue, waiting) = mpsc::channel(QUEUED);
        tokio::spawn(write_until_closed(db, waiting));
        Self { queue }
    }

    /// Writes `reply`; answers once it is committed or refused.
    pub async fn take(&self, reply: Reply) -> Taken {
        let (answer, answered) = oneshot::channel();
        self.queue
            .send(Waiting { reply, answer })
            .await
            .map_err(|_| AppError::Internal)?;
        answered.await.map_err(|_| AppError::Internal)?
    }
}

async fn write_until_closed(db: DatabaseConnection, mut waiting: mpsc::Receiver<Waiting>) {
    let mut batch = Vec::with_capacity(PER_TRANSACTION);
    while waiting.recv_many(&mut batch, PER_TRANSACTION).await > 0 {
        let (replies, answers): (Vec<Reply>, Vec<_>) =
            batch.drain(..).map(|w| (w.reply, w.answer)).unzip();
        let taken: Vec<Taken> = match together(&db, replies.clone()).await {
            Ok(taken) => taken.into_iter().map(Ok).collect(),
            Err(error) if replies.len() == 1 => vec![Err(error)],
            // The database refused the lot: each is written alone, so that one it cannot
            // take fails no other.
            Err(_) => {
                let mut taken = Vec::with_capacity(replies.len());
                for reply in replies {
                    let one = together(&db, vec![reply]).await;
                    taken.push(one.and_then(|mut one| one.pop().ok_or(AppError::Internal)));
                }
                taken
            }
        };
        for (answer, taken) in answers.into_iter().zip(taken) {
            let _ = answer.send(taken);
        }
    }
}

/// Writes `replies` in one transaction.
async fn together(
    db: &DatabaseConnection,
    replies: Vec<Reply>,
) -> Result<Vec<Result<i64, ReplyRefused>>, AppError> {
    let txn = begin_write(db).await?;
    let taken = instances::take_replies(&txn, replies).await?;
    txn.commit().await.map_err(db_error)?;
    Ok(taken)
}
