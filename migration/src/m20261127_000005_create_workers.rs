//! Workers: the tokens they connect with, the workers themselves, what a workitem's lease
//! needs (how often its worker was lost, its last progress report), and an index for each
//! participant's recent steps.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // A token is stored only as its SHA-256; `prefix` lets people tell tokens apart.
        manager
            .create_table(
                Table::create()
                    .table("worker_tokens")
                    .col(big_pk_auto("id"))
                    .col(string_len_uniq("name", 64))
                    .col(string_len_uniq("token_hash", 64))
                    .col(string_len("prefix", 16))
                    .col(string_len("created_by", 64))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone_null("last_used_at"))
                    .col(timestamp_with_time_zone_null("revoked_at"))
                    .to_owned(),
            )
            .await?;

        // A worker as it last introduced itself; `draining` outlives its connections.
        manager
            .create_table(
                Table::create()
                    .table("workers")
                    .col(big_pk_auto("id"))
                    .col(string_len_uniq("name", 64))
                    // Null for the server's embedded workers.
                    .col(big_integer_null("token_id"))
                    .col(string_len("host", 255))
                    .col(string_len("version", 32))
                    // JSON list of participant names.
                    .col(text("participants"))
                    .col(integer("capacity"))
                    .col(boolean("embedded").default(false))
                    .col(boolean("draining").default(false))
                    .col(boolean("connected").default(false))
                    .col(timestamp_with_time_zone("first_seen_at"))
                    .col(timestamp_with_time_zone("last_seen_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_workers_token")
                            .from("workers", "token_id")
                            .to("worker_tokens", "id")
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;

        // SQLite adds one column per statement.
        manager
            .alter_table(
                Table::alter()
                    .table("workitems")
                    .add_column(integer("losses").default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("workitems")
                    .add_column(string_len_null("progress", 256))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_workitems_worker")
                    .table("workitems")
                    .col("worker_id")
                    .col("state")
                    .to_owned(),
            )
            .await?;
        // A participant's latest completed steps, for its recent latency.
        manager
            .create_index(
                Index::create()
                    .name("idx_process_history_participant")
                    .table("process_history")
                    .col("participant")
                    .col("kind")
                    .col("id")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_workitems_worker")
                    .table("workitems")
                    .to_owned(),
            )
            .await?;
        for column in ["progress", "losses"] {
            manager
                .alter_table(
                    Table::alter()
                        .table("workitems")
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        for table in ["workers", "worker_tokens"] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
