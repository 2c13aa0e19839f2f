//! Builds: a project's numbered process instances of its build workflow, with the
//! configuration they were built from, their tasks and their errors and warnings; and the
//! worker a workitem must run on, so that a build's steps share one build directory; the
//! files a build produced, and how long a project keeps them.

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
        // A workitem naming a worker waits for that worker.
        manager
            .alter_table(
                Table::alter()
                    .table("workitems")
                    .add_column(string_len_null("on_worker", 64))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("builds")
                    .col(big_pk_auto("id"))
                    .col(big_integer("project_id"))
                    // Counts up from 1 within the project.
                    .col(integer("number"))
                    // Null once the instance is deleted with the build's history kept.
                    .col(big_integer_null("instance_id"))
                    .col(integer("configuration_revision"))
                    // JSON: the configuration with secrets masked, the definition, the
                    // command, and the commits the layers resolved to once known.
                    .col(text("snapshot"))
                    // Space-separated image targets, for filtering.
                    .col(string_len("targets", 1024))
                    .col(big_integer_null("requested_by"))
                    .col(string_len("requested_by_name", 64))
                    .col(big_integer_null("rebuild_of"))
                    .col(string_len_null("host", 255))
                    .col(string_len_null("directory", 1024))
                    // The project's configured build directory when the build started
                    // (null: a directory of its own): a build waits for the earlier builds
                    // using it to end.
                    .col(string_len_null("build_directory", 1024))
                    // BitBake's parsing progress in percent, and its task count.
                    .col(small_integer("parse_percent").default(0))
                    .col(integer("tasks_done").default(0))
                    .col(integer("tasks_total").default(0))
                    .col(integer("errors").default(0))
                    .col(integer("warnings").default(0))
                    .col(big_integer("log_bytes").default(0))
                    .col(big_integer("log_lines").default(0))
                    .col(boolean("hidden").default(false))
                    .col(boolean("pinned").default(false))
                    .col(boolean("archived").default(false))
                    // When retention removed the build's artifacts.
                    .col(timestamp_with_time_zone_null("artifacts_expired_at"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .foreign_key(&mut cascade(
                        "fk_builds_project",
                        "builds",
                        "project_id",
                        "projects",
                    ))
                    .foreign_key(&mut set_null(
                        "fk_builds_instance",
                        "builds",
                        "instance_id",
                        "process_instances",
                    ))
                    .foreign_key(&mut set_null(
                        "fk_builds_requested_by",
                        "builds",
                        "requested_by",
                        "users",
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_builds_number")
                    .table("builds")
                    .col("project_id")
                    .col("number")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_builds_instance")
                    .table("builds")
                    .col("instance_id")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_builds_created")
                    .table("builds")
                    .col("created_at")
                    .col("id")
                    .to_owned(),
            )
            .await?;

        manager
            .create_index(
                Index::create()
                    .name("idx_builds_build_directory")
                    .table("builds")
                    .col("build_directory")
                    .col("id")
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("build_tasks")
                    .col(big_pk_auto("id"))
                    .col(big_integer("build_id"))
                    .col(string_len("recipe", 255))
                    .col(string_len("version", 255))
                    .col(string_len("task", 255))
                    // started, succeeded or failed.
                    .col(string_len("outcome", 16))
                    .col(timestamp_with_time_zone("started_at"))
                    .col(timestamp_with_time_zone_null("ended_at"))
                    .foreign_key(&mut cascade(
                        "fk_build_tasks_build",
                        "build_tasks",
                        "build_id",
                        "builds",
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_build_tasks_task")
                    .table("build_tasks")
                    .col("build_id")
                    .col("recipe")
                    .col("task")
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("build_messages")
                    .col(big_pk_auto("id"))
                    .col(big_integer("build_id"))
                    // error or warning.
                    .col(string_len("level", 16))
                    .col(text("text"))
                    // The line of the build log it was read from, counting from 1.
                    .col(big_integer("line"))
                    .foreign_key(&mut cascade(
                        "fk_build_messages_build",
                        "build_messages",
                        "build_id",
                        "builds",
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_build_messages_build")
                    .table("build_messages")
                    .col("build_id")
                    .col("id")
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("artifacts")
                    .col(big_pk_auto("id"))
                    .col(big_integer("build_id"))
                    // The file's name as the worker found it; stored under the id.
                    .col(string_len("name", 255))
                    // image, sdk, manifest, log or other.
                    .col(string_len("kind", 16))
                    .col(big_integer("size"))
                    .col(string_len("sha256", 64))
                    .col(timestamp_with_time_zone("created_at"))
                    .foreign_key(&mut cascade(
                        "fk_artifacts_build",
                        "artifacts",
                        "build_id",
                        "builds",
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_artifacts_name")
                    .table("artifacts")
                    .col("build_id")
                    .col("name")
                    .unique()
                    .to_owned(),
            )
            .await?;

        // The definition a project's builds run (null: `standard-build`), the directory
        // they run in on a worker (null: one of their own), and how long it keeps its
        // builds' artifacts (null: no limit).
        for column in [
            string_len_null("build_definition", 64),
            string_len_null("build_directory", 1024),
            integer_null("keep_builds"),
            integer_null("keep_days"),
            big_integer_null("keep_bytes"),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table("projects")
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            "build_definition",
            "build_directory",
            "keep_builds",
            "keep_days",
            "keep_bytes",
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table("projects")
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        for table in ["artifacts", "build_messages", "build_tasks", "builds"] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table("workitems")
                    .drop_column("on_worker")
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
