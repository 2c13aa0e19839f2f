//! Configuration revisions: every save of a project's configuration, kept whole.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("configuration_revisions")
                    .col(big_pk_auto("id"))
                    .col(big_integer("project_id"))
                    .col(integer("number"))
                    .col(big_integer_null("author_id"))
                    .col(string_len("author", 64))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(string_len("summary", 512))
                    .col(text("document"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_configuration_revisions_project")
                            .from("configuration_revisions", "project_id")
                            .to("projects", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_configuration_revisions_number")
                    .table("configuration_revisions")
                    .col("project_id")
                    .col("number")
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("configuration_revisions").to_owned())
            .await
    }
}
