//! Groups of users, and projects with their owner, group and permissions.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("groups")
                    .col(big_pk_auto("id"))
                    .col(string_len_uniq("name", 64))
                    .col(timestamp_with_time_zone("created_at"))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("group_members")
                    .col(big_integer("group_id"))
                    .col(big_integer("user_id"))
                    .col(boolean("is_maintainer").default(false))
                    .col(timestamp_with_time_zone("added_at"))
                    .primary_key(Index::create().col("group_id").col("user_id"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_group_members_group")
                            .from("group_members", "group_id")
                            .to("groups", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_group_members_user")
                            .from("group_members", "user_id")
                            .to("users", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_group_members_user")
                    .table("group_members")
                    .col("user_id")
                    .col("group_id")
                    .to_owned(),
            )
            .await?;

        // Permissions are bit sets: view 1, build 2, configure 4, download 8.
        manager
            .create_table(
                Table::create()
                    .table("projects")
                    .col(big_pk_auto("id"))
                    .col(string_len_uniq("slug", 64))
                    .col(string_len("name", 128))
                    .col(text("description"))
                    .col(big_integer("owner_id"))
                    .col(big_integer_null("group_id"))
                    .col(small_integer("group_permissions"))
                    .col(small_integer("other_permissions"))
                    .col(timestamp_with_time_zone_null("archived_at"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_projects_owner")
                            .from("projects", "owner_id")
                            .to("users", "id")
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_projects_group")
                            .from("projects", "group_id")
                            .to("groups", "id")
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            ("idx_projects_owner", &["owner_id", "name"][..]),
            ("idx_projects_group", &["group_id", "name"][..]),
            ("idx_projects_name", &["name"][..]),
            ("idx_projects_updated_at", &["updated_at"][..]),
        ] {
            let mut index = Index::create().name(name).table("projects").to_owned();
            for column in columns {
                index.col(*column);
            }
            manager.create_index(index).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["projects", "group_members", "groups"] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
