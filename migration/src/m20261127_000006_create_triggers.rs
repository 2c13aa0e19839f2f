//! Triggers: cron schedules and webhooks that launch a process definition, with their last
//! runs.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // A trigger belongs to a project, or is global (project_id null, scope_key 0), and
        // launches a definition of its scope by name.
        manager
            .create_table(
                Table::create()
                    .table("triggers")
                    .col(big_pk_auto("id"))
                    .col(big_integer_null("project_id"))
                    .col(big_integer("scope_key"))
                    .col(string_len("name", 64))
                    // "cron" or "webhook".
                    .col(string_len("kind", 16))
                    .col(string_len("definition_name", 64))
                    // JSON object: fields every launch starts with.
                    .col(text("fields"))
                    // Cron: the 5-field schedule and the IANA time zone it is read in.
                    .col(string_len_null("schedule", 128))
                    .col(string_len_null("time_zone", 64))
                    // Webhook: the shared secret signatures are checked with.
                    .col(string_len_null("secret", 128))
                    // Webhook: JSON object, field name to JSON pointer into the payload.
                    .col(text("mapping"))
                    .col(boolean("enabled").default(true))
                    .col(string_len("created_by", 64))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone_null("next_run_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_triggers_project")
                            .from("triggers", "project_id")
                            .to("projects", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_triggers_name")
                    .table("triggers")
                    .col("scope_key")
                    .col("name")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_triggers_next_run")
                    .table("triggers")
                    .col("next_run_at")
                    .to_owned(),
            )
            .await?;

        // What a trigger did each time it fired or was refused; only the latest are kept.
        manager
            .create_table(
                Table::create()
                    .table("trigger_runs")
                    .col(big_pk_auto("id"))
                    .col(big_integer("trigger_id"))
                    .col(timestamp_with_time_zone("at"))
                    // "started", "refused" or "failed".
                    .col(string_len("outcome", 16))
                    .col(big_integer_null("process_id"))
                    .col(string_len("message", 512))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_trigger_runs_trigger")
                            .from("trigger_runs", "trigger_id")
                            .to("triggers", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_trigger_runs_trigger")
                    .table("trigger_runs")
                    .col("trigger_id")
                    .col("id")
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("trigger_runs").to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table("triggers").to_owned())
            .await
    }
}
