//! What Kiln reads from BitBake's output beyond the first builds: setscene tasks counted
//! apart from tasks, the furthest a build's progress bar got, the lines BitBake groups with
//! a failed task, and the prefix a project's build output carries before each line.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Each table and the columns it gains, one statement each (SQLite adds one at a time).
fn columns() -> Vec<(&'static str, ColumnDef)> {
    vec![
        // Setscene tasks (restored from shared state) reached, of their total.
        ("builds", integer("setscene_done").default(0).to_owned()),
        ("builds", integer("setscene_total").default(0).to_owned()),
        // The furthest the build's progress bar got, in percent: it never goes back.
        ("builds", small_integer("progress").default(0).to_owned()),
        // For a failed task: where BitBake stored its log, its exit code.
        ("build_tasks", text_null("failure")),
        // A regular expression taken off the start of each line of the project's build
        // output (null: none), such as kas's timestamps.
        ("projects", string_len_null("line_prefix", 256)),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, column) in columns() {
            manager
                .alter_table(Table::alter().table(table).add_column(column).to_owned())
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, column) in columns().into_iter().rev() {
            manager
                .alter_table(
                    Table::alter()
                        .table(table)
                        .drop_column(column.get_column_name())
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
