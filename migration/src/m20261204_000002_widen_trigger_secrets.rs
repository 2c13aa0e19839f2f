//! Room for a webhook trigger's secret as stored sealed: the sealed form of a 48-character
//! secret takes 144 characters. SQLite does not hold text to its declared length, so only
//! PostgreSQL's column changes.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::string_len_null;
use sea_orm_migration::sea_orm::DbBackend;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261204_000002_widen_trigger_secrets"
    }
}

async fn secret_column(manager: &SchemaManager<'_>, length: u32) -> Result<(), DbErr> {
    if manager.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    manager
        .alter_table(
            Table::alter()
                .table("triggers")
                .modify_column(string_len_null("secret", length))
                .to_owned(),
        )
        .await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        secret_column(manager, 512).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        secret_column(manager, 128).await
    }
}
