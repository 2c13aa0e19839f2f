//! A per-project counter of build numbers that only grows, so a deleted build's number is
//! never given to another build: links, audit rows and notifications keep meaning one build.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::integer;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261204_000001_add_build_counter"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("projects")
                    .add_column(integer("last_build_number").default(0))
                    .to_owned(),
            )
            .await?;
        // Numbers already given stay given.
        let highest = Query::select()
            .expr(Expr::col(("builds", "number")).max())
            .from("builds")
            .and_where(Expr::col(("builds", "project_id")).equals(("projects", "id")))
            .to_owned();
        manager
            .exec_stmt(
                Query::update()
                    .table("projects")
                    .value(
                        "last_build_number",
                        Func::coalesce([
                            SimpleExpr::SubQuery(
                                None,
                                Box::new(highest.into_sub_query_statement()),
                            ),
                            Expr::val(0),
                        ]),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("projects")
                    .drop_column("last_build_number")
                    .to_owned(),
            )
            .await
    }
}
