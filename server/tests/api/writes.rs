//! Write transactions on SQLite: writers wait for their turn in the server, first come
//! first served, whichever pool on the same file they use.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use app::ssr::begin_write;
use sea_orm::ConnectionTrait;
use server::config::StoreSettings;

use crate::helpers::Backend;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_writers_take_turns_in_the_order_they_came() {
    let app = Backend::Sqlite.spawn_default().await;
    let other = server::database::connect(&StoreSettings::new(
        app.data_dir.clone(),
        app.database_url.clone(),
    ))
    .await
    .unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let first = begin_write(&app.db).await.unwrap();
    let mut writers = Vec::new();
    for n in 0..6 {
        let db = if n % 2 == 0 {
            other.clone()
        } else {
            app.db.clone()
        };
        let order = order.clone();
        writers.push(tokio::spawn(async move {
            let txn = begin_write(&db).await.unwrap();
            order.lock().unwrap().push(n);
            txn.execute_unprepared("CREATE TABLE IF NOT EXISTS turns (n INTEGER)")
                .await
                .unwrap();
            txn.commit().await.unwrap();
        }));
        // Each writer is waiting before the next comes.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        order.lock().unwrap().is_empty(),
        "nobody writes while the first holds its turn"
    );
    first.commit().await.unwrap();
    for writer in writers {
        tokio::time::timeout(Duration::from_secs(10), writer)
            .await
            .expect("every writer gets its turn")
            .unwrap();
    }
    assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3, 4, 5]);
}
