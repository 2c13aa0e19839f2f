//! The workflow engine against a real database: stored definitions and their versions,
//! instances run by the application's own runner, workitem fencing and control commands.

use std::time::Duration;

use app::ssr::audit::Actor;
use app::ssr::entities::engine_messages::{Column as MessageColumn, Entity as Messages};
use app::ssr::entities::process_definitions::Entity as Definitions;
use app::ssr::entities::process_history::{Column as HistoryColumn, Entity as History};
use app::ssr::entities::process_instances::{Column as InstanceColumn, Entity as Instances};
use app::ssr::entities::workitems::{
    Column as WorkitemColumn, Entity as Workitems, Model as Workitem,
};
use app::ssr::processes::Scope;
use app::ssr::processes::definitions::{self, SaveError};
use app::ssr::processes::instances::{self, ReplyRefused};
use app::workflow::definition::Fields;
use app::workflow::engine::{Message, Outcome};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};

use crate::helpers::{TestApp, audit_rows, on_each_database};

on_each_database!(
    definitions_are_checked_and_versioned,
    an_instance_runs_to_its_end_on_the_runner,
    replies_are_fenced_by_attempt,
    instances_keep_the_versions_they_started_with,
    cancel_runs_on_cancel_and_is_audited,
    a_message_that_fails_does_not_hold_up_the_queue,
);

pub(crate) fn fields(value: Value) -> Fields {
    value.as_object().cloned().unwrap()
}

pub(crate) async fn save(app: &TestApp, source: &str) -> definitions::Saved {
    definitions::save(&app.db, &Actor::system(), Scope::Global, source)
        .await
        .unwrap_or_else(|e| panic!("{source}: {:?}", app::error::AppError::from(e)))
}

pub(crate) async fn launch(app: &TestApp, name: &str, launch: Value) -> i64 {
    let id = instances::launch(
        &app.db,
        &app.engine.cache,
        &Actor::system(),
        Scope::Global,
        name,
        fields(launch),
    )
    .await
    .unwrap();
    app.engine.wake();
    id
}

/// Waits (up to 20 s) until the instance has `status`; returns its final fields.
pub(crate) async fn wait_for_status(app: &TestApp, id: i64, status: &str) -> Fields {
    for _ in 0..1000 {
        let (row, instance) = instances::load(&app.db, id).await.unwrap();
        if row.status == status {
            return instance.fields;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (row, instance) = instances::load(&app.db, id).await.unwrap();
    panic!(
        "instance {id} is {} not {status}: {instance:#?}",
        row.status
    );
}

/// Waits until the instance has a workitem out at `attempt`.
async fn wait_for_workitem(app: &TestApp, id: i64, attempt: i32) -> Workitem {
    for _ in 0..1000 {
        let found = Workitems::find()
            .filter(WorkitemColumn::InstanceId.eq(id))
            .filter(WorkitemColumn::Attempt.eq(attempt))
            .filter(WorkitemColumn::State.eq("queued"))
            .one(&app.db)
            .await
            .unwrap();
        if let Some(workitem) = found {
            return workitem;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no workitem at attempt {attempt} for instance {id}");
}

pub(crate) async fn history(app: &TestApp, id: i64, kind: &str) -> Vec<String> {
    History::find()
        .filter(HistoryColumn::InstanceId.eq(id))
        .filter(HistoryColumn::Kind.eq(kind))
        .order_by_asc(HistoryColumn::Id)
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|row| format!("{}{}", row.participant.unwrap_or_default(), row.message))
        .collect()
}

async fn definitions_are_checked_and_versioned(app: TestApp) {
    // Kiln ships one: the standard build workflow.
    let shipped = Definitions::find().count(&app.db).await.unwrap();
    assert_eq!(shipped, 1);
    let bad = "name: deploy\nprocess:\n  sequence:\n    - participant: rocket\n";
    let Err(SaveError::Invalid(errors)) =
        definitions::save(&app.db, &Actor::system(), Scope::Global, bad).await
    else {
        panic!("an unknown participant must be refused");
    };
    assert_eq!(
        (errors[0].position.line, errors[0].position.column),
        (4, 20)
    );
    assert_eq!(
        Definitions::find().count(&app.db).await.unwrap(),
        shipped,
        "nothing stored"
    );

    let first = save(&app, "name: deploy\nprocess: { participant: noop }\n").await;
    assert_eq!((first.version, first.created), (1, true));
    let same = save(&app, "name: deploy\nprocess: { participant: noop }\n").await;
    assert_eq!(
        (same.version, same.created),
        (1, false),
        "identical text stores nothing"
    );
    let second = save(&app, "name: deploy\nprocess: { participant: log }\n").await;
    assert_eq!(
        (second.version, second.definition_id),
        (2, first.definition_id)
    );
    let rows = audit_rows(
        &app,
        "definition.save",
        "definition",
        &first.definition_id.to_string(),
    )
    .await;
    assert_eq!(rows.len(), 2);
}

async fn an_instance_runs_to_its_end_on_the_runner(app: TestApp) {
    let steps = "    - participant: noop\n".repeat(40);
    save(
        &app,
        &format!(
            "name: chain\nfields: {{ greeting: hello }}\nprocess:\n  sequence:\n{steps}    - wait: 200ms\n    - set: {{ said: \"${{greeting}} ${{who}}\" }}\n"
        ),
    )
    .await;
    // Launch fields have a size limit, and a refused launch leaves no instance.
    let huge = fields(json!({ "blob": "x".repeat(instances::MAX_LAUNCH_FIELDS_BYTES) }));
    let refused = instances::launch(
        &app.db,
        &app.engine.cache,
        &Actor::system(),
        Scope::Global,
        "chain",
        huge,
    )
    .await;
    assert_eq!(refused.unwrap_err().field(), Some("fields"));
    assert_eq!(Instances::find().count(&app.db).await.unwrap(), 0);

    let id = launch(&app, "chain", json!({ "who": "kiln" })).await;
    let end = wait_for_status(&app, id, "finished").await;
    assert_eq!(end["said"], json!("hello kiln"));
    assert_eq!(history(&app, id, "completed").await.len(), 40);
    assert_eq!(history(&app, id, "finished").await.len(), 1);
    let (row, _) = instances::load(&app.db, id).await.unwrap();
    assert!(row.finished_at.is_some());
}

async fn replies_are_fenced_by_attempt(app: TestApp) {
    save(&app, "name: check\nprocess:\n  participant: shell\n  params: { command: [make, check] }\n  on_error: { retry: 1 }\n").await;
    let id = launch(&app, "check", json!({})).await;
    let first = wait_for_workitem(&app, id, 1).await;
    assert_eq!(first.participant, "shell");
    assert_eq!(
        serde_json::from_str::<Value>(&first.params).unwrap(),
        json!({ "command": ["make", "check"] })
    );

    let error = Outcome::Error {
        message: "exit status 2".into(),
    };
    instances::reply(&app.db, first.id, 1, None, error.clone(), "worker-a")
        .await
        .unwrap()
        .unwrap();
    app.engine.wake();
    let second = wait_for_workitem(&app, id, 2).await;
    assert_eq!(
        second.id, first.id,
        "the retry is a new attempt of the same workitem"
    );

    // The first attempt, late, and a second reply to it: both refused.
    let late = instances::reply(&app.db, first.id, 1, None, error, "worker-a")
        .await
        .unwrap();
    assert_eq!(
        late,
        Err(ReplyRefused::StaleAttempt {
            given: 1,
            current: 2
        })
    );
    let done = Outcome::Done {
        fields: fields(json!({ "outcome": "passed" })),
        command: None,
    };
    instances::reply(&app.db, second.id, 2, None, done.clone(), "worker-b")
        .await
        .unwrap()
        .unwrap();
    let again = instances::reply(&app.db, second.id, 2, None, done, "worker-b")
        .await
        .unwrap();
    assert_eq!(again, Err(ReplyRefused::NotOut("replied".into())));
    app.engine.wake();

    let end = wait_for_status(&app, id, "finished").await;
    assert_eq!(end["outcome"], json!("passed"));
    assert_eq!(history(&app, id, "completed").await, ["shell"]);
    assert_eq!(history(&app, id, "retried").await.len(), 1);
}

async fn instances_keep_the_versions_they_started_with(app: TestApp) {
    save(&app, "name: publish\nprocess: { participant: shell }\n").await;
    save(&app, "name: release\nprocess:\n  sequence:\n    - subprocess: publish\n    - participant: set\n      params: { version: 1 }\n").await;
    let id = launch(&app, "release", json!({})).await;
    let workitem = wait_for_workitem(&app, id, 1).await;

    // New versions of both while the instance runs.
    save(&app, "name: publish\nprocess: { participant: noop }\n").await;
    save(
        &app,
        "name: release\nprocess: { participant: set, params: { version: 2 } }\n",
    )
    .await;

    let done = Outcome::Done {
        fields: Fields::new(),
        command: None,
    };
    instances::reply(&app.db, workitem.id, 1, None, done, "worker")
        .await
        .unwrap()
        .unwrap();
    app.engine.wake();
    let end = wait_for_status(&app, id, "finished").await;
    assert_eq!(
        end["version"],
        json!(1),
        "the launched version ran to its end"
    );

    let newer = launch(&app, "release", json!({})).await;
    assert_eq!(
        wait_for_status(&app, newer, "finished").await["version"],
        json!(2)
    );
}

async fn cancel_runs_on_cancel_and_is_audited(app: TestApp) {
    save(&app, "name: long\nprocess:\n  participant: shell\n  on_cancel: { participant: log, params: { message: cleaned up } }\n").await;
    let id = launch(&app, "long", json!({})).await;
    let workitem = wait_for_workitem(&app, id, 1).await;
    instances::control(&app.db, &Actor::system(), id, Message::Cancel)
        .await
        .unwrap();
    app.engine.wake();
    wait_for_status(&app, id, "cancelled").await;
    assert_eq!(history(&app, id, "log").await, ["cleaned up"]);
    let row = Workitems::find_by_id(workitem.id)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.state, "retracted");
    // A reply after the cancel is refused.
    let done = Outcome::Done {
        fields: Fields::new(),
        command: None,
    };
    let refused = instances::reply(&app.db, workitem.id, 1, None, done, "worker")
        .await
        .unwrap();
    assert_eq!(refused, Err(ReplyRefused::NotOut("retracted".into())));
    assert_eq!(
        audit_rows(&app, "process.control", "process", &id.to_string())
            .await
            .len(),
        1
    );
    assert_eq!(
        audit_rows(&app, "process.launch", "process", &id.to_string())
            .await
            .len(),
        1
    );
}

async fn a_message_that_fails_does_not_hold_up_the_queue(app: TestApp) {
    save(&app, "name: quick\nprocess: { participant: noop }\n").await;
    let broken = launch(&app, "quick", json!({})).await;
    wait_for_status(&app, broken, "finished").await;
    // Its state becomes unreadable, and a message waits for it, first in the queue.
    Instances::update_many()
        .col_expr(InstanceColumn::State, Expr::value("not an instance"))
        .filter(InstanceColumn::Id.eq(broken))
        .exec(&app.db)
        .await
        .unwrap();
    instances::enqueue(&app.db, broken, &Message::Resume, chrono::Utc::now())
        .await
        .unwrap();

    let next = launch(&app, "quick", json!({})).await;
    wait_for_status(&app, next, "finished").await;
    let stuck = Messages::find()
        .filter(MessageColumn::InstanceId.eq(broken))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(stuck, 1, "the failed message stays queued");

    // With only the failing message due, a runner says so, and waits before trying again.
    let live = app::ssr::live::LiveBus::default();
    let hub = app::ssr::workers::WorkerHub::new(
        Duration::from_secs(30),
        live.clone(),
        app.secrets.clone(),
    );
    let runner =
        server::background::engine::Runner::new(app.db.clone(), app.engine.clone(), hub, live);
    assert_eq!(
        runner.try_execute_task().await.unwrap(),
        server::background::engine::ExecutionOutcome::Failing
    );
}
