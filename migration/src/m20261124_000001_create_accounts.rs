//! Users, their sessions, login throttling and the audit log.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("users")
                    .col(big_pk_auto("id"))
                    .col(string_len_uniq("username", 64))
                    .col(string_len("display_name", 128))
                    .col(string_len_null("email", 254))
                    .col(string_len("password_hash", 255))
                    .col(boolean("is_admin").default(false))
                    .col(boolean("is_disabled").default(false))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .col(timestamp_with_time_zone_null("last_login_at"))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("sessions")
                    .col(string_len("id", 40).primary_key())
                    .col(big_integer_null("user_id"))
                    .col(text("data"))
                    .col(timestamp_with_time_zone("expires_at"))
                    .col(timestamp_with_time_zone("created_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_sessions_user")
                            .from("sessions", "user_id")
                            .to("users", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_sessions_user_id")
                    .table("sessions")
                    .col("user_id")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_sessions_expires_at")
                    .table("sessions")
                    .col("expires_at")
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("login_throttle")
                    .col(string_len("scope", 16))
                    .col(string_len("key", 255))
                    .col(integer("failures"))
                    .col(timestamp_with_time_zone("window_started_at"))
                    .primary_key(Index::create().col("scope").col("key"))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("audit_log")
                    .col(big_pk_auto("id"))
                    .col(timestamp_with_time_zone("at"))
                    .col(big_integer_null("actor_id"))
                    .col(string_len("actor", 64))
                    .col(string_len_null("client_addr", 64))
                    .col(string_len("action", 64))
                    .col(string_len("object_type", 32))
                    .col(string_len_null("object_id", 64))
                    .col(string_len("summary", 512))
                    .col(text("details"))
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            ("idx_audit_log_at", &["at"][..]),
            ("idx_audit_log_actor", &["actor_id", "at"][..]),
            ("idx_audit_log_action", &["action", "at"][..]),
            (
                "idx_audit_log_object",
                &["object_type", "object_id", "at"][..],
            ),
        ] {
            let mut index = Index::create().name(name).table("audit_log").to_owned();
            for column in columns {
                index.col(*column);
            }
            manager.create_index(index).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["audit_log", "login_throttle", "sessions", "users"] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
