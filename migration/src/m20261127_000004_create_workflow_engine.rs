//! The workflow engine: participants, process definitions with their versions, process
//! instances with their queued messages, workitems and history.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

fn cascade(
    name: &str,
    from: &'static str,
    column: &'static str,
    to: &'static str,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(from, column)
        .to(to, "id")
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

fn set_null(
    name: &str,
    from: &'static str,
    column: &'static str,
    to: &'static str,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(from, column)
        .to(to, "id")
        .on_delete(ForeignKeyAction::SetNull)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // What can serve workitems: built into the server, on workers, or people.
        manager
            .create_table(
                Table::create()
                    .table("participants")
                    .col(big_pk_auto("id"))
                    .col(string_len_uniq("name", 64))
                    .col(string_len("kind", 16))
                    .col(string_len("description", 512))
                    .col(big_integer_null("default_timeout_ms"))
                    // Attempts elsewhere after its worker is lost, before the workitem fails.
                    .col(integer("worker_loss_retries").default(1))
                    // JSON: who may use it (null: everyone who may run the process).
                    .col(text_null("allowed"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .to_owned(),
            )
            .await?;

        // A definition belongs to a project, or is global (project_id null, scope_key 0).
        manager
            .create_table(
                Table::create()
                    .table("process_definitions")
                    .col(big_pk_auto("id"))
                    .col(big_integer_null("project_id"))
                    .col(big_integer("scope_key"))
                    .col(string_len("name", 64))
                    .col(integer("latest_version"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .foreign_key(&mut cascade(
                        "fk_process_definitions_project",
                        "process_definitions",
                        "project_id",
                        "projects",
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_process_definitions_name")
                    .table("process_definitions")
                    .col("scope_key")
                    .col("name")
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("process_definition_versions")
                    .col(big_pk_auto("id"))
                    .col(big_integer("definition_id"))
                    .col(integer("version"))
                    .col(text("source"))
                    // The parsed tree as JSON, so running it needs no parsing.
                    .col(text("tree"))
                    .col(big_integer_null("author_id"))
                    .col(string_len("author", 64))
                    .col(timestamp_with_time_zone("created_at"))
                    .foreign_key(&mut cascade(
                        "fk_process_definition_versions_definition",
                        "process_definition_versions",
                        "definition_id",
                        "process_definitions",
                    ))
                    .foreign_key(&mut set_null(
                        "fk_process_definition_versions_author",
                        "process_definition_versions",
                        "author_id",
                        "users",
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_process_definition_versions_version")
                    .table("process_definition_versions")
                    .col("definition_id")
                    .col("version")
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("process_instances")
                    .col(big_pk_auto("id"))
                    .col(big_integer_null("project_id"))
                    .col(string_len("definition_name", 64))
                    // JSON list of the pinned version ids, in the instance's definition order.
                    .col(text("pinned_versions"))
                    .col(string_len("status", 16))
                    // The interpreter's state as JSON.
                    .col(text("state"))
                    // Bumped by every transition; a transition that finds another number
                    // lost a race and is retried.
                    .col(big_integer("revision"))
                    .col(big_integer_null("launched_by"))
                    .col(string_len("launched_by_name", 64))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .col(timestamp_with_time_zone_null("finished_at"))
                    .foreign_key(&mut cascade(
                        "fk_process_instances_project",
                        "process_instances",
                        "project_id",
                        "projects",
                    ))
                    .foreign_key(&mut set_null(
                        "fk_process_instances_launched_by",
                        "process_instances",
                        "launched_by",
                        "users",
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_process_instances_status")
                    .table("process_instances")
                    .col("status")
                    .col("id")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_process_instances_project")
                    .table("process_instances")
                    .col("project_id")
                    .col("id")
                    .to_owned(),
            )
            .await?;

        // The engine's durable queue: each message is handled in the transaction that
        // deletes it.
        manager
            .create_table(
                Table::create()
                    .table("engine_messages")
                    .col(big_pk_auto("id"))
                    .col(big_integer("instance_id"))
                    .col(text("body"))
                    .col(timestamp_with_time_zone("due_at"))
                    .foreign_key(&mut cascade(
                        "fk_engine_messages_instance",
                        "engine_messages",
                        "instance_id",
                        "process_instances",
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_engine_messages_due")
                    .table("engine_messages")
                    .col("due_at")
                    .col("id")
                    .to_owned(),
            )
            .await?;

        // The outbox of workitems for workers and people; a retry updates the attempt.
        manager
            .create_table(
                Table::create()
                    .table("workitems")
                    .col(big_pk_auto("id"))
                    .col(big_integer("instance_id"))
                    .col(big_integer("seq"))
                    .col(integer("attempt"))
                    .col(big_integer("flow_id"))
                    .col(string_len("participant", 64))
                    .col(text("params"))
                    .col(text("fields"))
                    // queued, dispatched, replied, retracted
                    .col(string_len("state", 16))
                    .col(big_integer_null("worker_id"))
                    .col(timestamp_with_time_zone_null("lease_until"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .foreign_key(&mut cascade(
                        "fk_workitems_instance",
                        "workitems",
                        "instance_id",
                        "process_instances",
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_workitems_seq")
                    .table("workitems")
                    .col("instance_id")
                    .col("seq")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_workitems_state")
                    .table("workitems")
                    .col("state")
                    .col("participant")
                    .col("id")
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("process_history")
                    .col(big_pk_auto("id"))
                    .col(big_integer("instance_id"))
                    .col(timestamp_with_time_zone("at"))
                    .col(string_len("kind", 16))
                    .col(big_integer_null("flow_id"))
                    .col(integer_null("definition_index"))
                    .col(integer_null("node_id"))
                    .col(string_len_null("participant", 64))
                    .col(string_len("by", 128))
                    .col(text("message"))
                    .col(big_integer_null("duration_ms"))
                    .foreign_key(&mut cascade(
                        "fk_process_history_instance",
                        "process_history",
                        "instance_id",
                        "process_instances",
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_process_history_instance")
                    .table("process_history")
                    .col("instance_id")
                    .col("id")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "process_history",
            "workitems",
            "engine_messages",
            "process_instances",
            "process_definition_versions",
            "process_definitions",
            "participants",
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
