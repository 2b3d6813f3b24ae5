//! Dataset versions and which studies, trials and runs used them.

use crate::rows::get;
use crate::{Result, Store, StoreError, append, now_ms, q};
use postdoc_core::TrialNo;
use serde::Serialize;
use serde_json::Value;
use sqlx::any::AnyRow;

/// One version of a dataset, named by the hash of its normalised rows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatasetVersion {
    pub version: String,
    pub rows: u64,
    pub bytes: u64,
    pub format: String,
    /// The post-training shape most of its rows have (`messages`, `preference`, ...).
    pub shape: Option<String>,
    /// Where it was first seen: a file, `hub:ORG/NAME`, a trial's training data.
    pub source: String,
    pub licence: Option<String>,
    /// The version it was made from, and how (`{"op": "decontaminate", ...}`).
    pub derived_from: Option<String>,
    pub transform: Option<Value>,
    pub created_ms: i64,
}

/// A study's use of a version: its own evaluation data (no trial), or what one trial's run
/// trained on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatasetUse {
    pub study: String,
    pub trial: Option<TrialNo>,
    pub run_idx: Option<u32>,
    pub version: String,
    /// `evaluation`, `training` or `data`.
    pub role: String,
    pub path: String,
    pub at_ms: i64,
}

fn version(r: &AnyRow) -> Result<DatasetVersion> {
    let transform: Option<String> = get(r, "transform")?;
    Ok(DatasetVersion {
        version: get(r, "version")?,
        rows: get::<i64>(r, "row_count")? as u64,
        bytes: get::<i64>(r, "bytes")? as u64,
        format: get(r, "format")?,
        shape: get(r, "shape")?,
        source: get(r, "source")?,
        licence: get(r, "licence")?,
        derived_from: get(r, "derived_from")?,
        transform: transform
            .map(|t| serde_json::from_str(&t))
            .transpose()
            .map_err(|e| StoreError::Corrupt { what: "dataset transform", detail: e.to_string() })?,
        created_ms: get(r, "created_ms")?,
    })
}

fn dataset_use(r: &AnyRow) -> Result<DatasetUse> {
    Ok(DatasetUse {
        study: get(r, "name")?,
        trial: get::<Option<i64>>(r, "trial")?.map(|t| t as TrialNo),
        run_idx: get::<Option<i64>>(r, "run_idx")?.map(|i| i as u32),
        version: get(r, "version")?,
        role: get(r, "role")?,
        path: get(r, "path")?,
        at_ms: get(r, "at_ms")?,
    })
}

const USE_COLUMNS: &str = "s.name, u.trial, u.run_idx, u.version, u.role, u.path, u.at_ms";

impl Store {
    /// Records a version. A version already known keeps its first source and time; what it
    /// lacked (a licence, the version it was made from) is filled in from this record.
    pub async fn record_dataset(&self, v: &DatasetVersion) -> Result<()> {
        let mut tx = self.begin().await?;
        upsert_version(&mut tx, v).await?;
        tx.commit().await.map_err(q("commit"))
    }

    /// Records that `study` (and, for a trial's data, `trial` and its run) used `v`, with the
    /// version itself, in one transaction with its event.
    pub async fn record_dataset_use(
        &self,
        study: i64,
        trial: Option<TrialNo>,
        run_idx: Option<u32>,
        v: &DatasetVersion,
        role: &str,
        path: &str,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        upsert_version(&mut tx, v).await?;
        sqlx::query(
            "INSERT INTO dataset_uses (study_id, trial, run_idx, version, role, path, at_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(study)
        .bind(trial.map(|t| t as i64))
        .bind(run_idx.map(i64::from))
        .bind(&v.version)
        .bind(role)
        .bind(path)
        .bind(now_ms())
        .execute(&mut *tx)
        .await
        .map_err(q("record dataset use"))?;
        let payload = serde_json::json!({
            "version": v.version, "role": role, "path": path, "run": run_idx, "rows": v.rows,
        });
        append(&mut tx, study, trial, "dataset_used", &payload).await?;
        tx.commit().await.map_err(q("commit"))
    }

    /// Every known version, oldest first.
    pub async fn datasets(&self) -> Result<Vec<DatasetVersion>> {
        let rows = sqlx::query("SELECT * FROM dataset_versions ORDER BY created_ms, version")
            .fetch_all(&self.pool)
            .await
            .map_err(q("read dataset versions"))?;
        rows.iter().map(version).collect()
    }

    /// The version named by `prefix` (a whole version or its start), if exactly one has it.
    pub async fn dataset(&self, prefix: &str) -> Result<Option<DatasetVersion>> {
        if prefix.is_empty() || !prefix.chars().all(|c| c.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let rows =
            sqlx::query("SELECT * FROM dataset_versions WHERE version >= $1 AND version < $2 ORDER BY version LIMIT 2")
                .bind(prefix.to_ascii_lowercase())
                .bind(format!("{}g", prefix.to_ascii_lowercase()))
                .fetch_all(&self.pool)
                .await
                .map_err(q("find dataset version"))?;
        match rows.as_slice() {
            [one] => Ok(Some(version(one)?)),
            [] => Ok(None),
            _ => Err(StoreError::Corrupt {
                what: "dataset version",
                detail: format!("`{prefix}` names more than one version; give more of it"),
            }),
        }
    }

    /// The chain a version was made by: the version itself, then what it was made from, back to
    /// the first (a cycle, which only a damaged store could hold, ends the chain).
    pub async fn dataset_lineage(&self, v: &str) -> Result<Vec<DatasetVersion>> {
        let mut chain: Vec<DatasetVersion> = Vec::new();
        let mut next = Some(v.to_string());
        while let Some(current) = next.take() {
            if chain.iter().any(|c| c.version == current) {
                break;
            }
            let row = sqlx::query("SELECT * FROM dataset_versions WHERE version = $1")
                .bind(&current)
                .fetch_optional(&self.pool)
                .await
                .map_err(q("read dataset version"))?;
            let Some(row) = row else { break };
            let found = version(&row)?;
            next = found.derived_from.clone();
            chain.push(found);
        }
        Ok(chain)
    }

    /// Versions made from `v`.
    pub async fn datasets_derived_from(&self, v: &str) -> Result<Vec<DatasetVersion>> {
        let rows = sqlx::query("SELECT * FROM dataset_versions WHERE derived_from = $1 ORDER BY created_ms")
            .bind(v)
            .fetch_all(&self.pool)
            .await
            .map_err(q("read derived dataset versions"))?;
        rows.iter().map(version).collect()
    }

    /// What a study's trial used (`Some(trial)`), or every use in the study (`None`), in order.
    pub async fn dataset_uses(&self, study: i64, trial: Option<TrialNo>) -> Result<Vec<DatasetUse>> {
        let query = match trial {
            Some(_) => format!(
                "SELECT {USE_COLUMNS} FROM dataset_uses u JOIN studies s ON s.id = u.study_id
                 WHERE u.study_id = $1 AND u.trial = $2 ORDER BY u.id"
            ),
            None => format!(
                "SELECT {USE_COLUMNS} FROM dataset_uses u JOIN studies s ON s.id = u.study_id
                 WHERE u.study_id = $1 ORDER BY u.id"
            ),
        };
        let mut query = sqlx::query(sqlx::AssertSqlSafe(query)).bind(study);
        if let Some(t) = trial {
            query = query.bind(t as i64);
        }
        let rows = query.fetch_all(&self.pool).await.map_err(q("read dataset uses"))?;
        rows.iter().map(dataset_use).collect()
    }

    /// Every use of a version, in any study.
    pub async fn uses_of_dataset(&self, v: &str) -> Result<Vec<DatasetUse>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {USE_COLUMNS} FROM dataset_uses u JOIN studies s ON s.id = u.study_id WHERE u.version = $1 ORDER BY u.id"
        )))
        .bind(v)
        .fetch_all(&self.pool)
        .await
        .map_err(q("read dataset uses"))?;
        rows.iter().map(dataset_use).collect()
    }
}

async fn upsert_version(tx: &mut sqlx::AnyConnection, v: &DatasetVersion) -> Result<()> {
    sqlx::query(
        "INSERT INTO dataset_versions
           (version, row_count, bytes, format, shape, source, licence, derived_from, transform, created_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (version) DO UPDATE SET
           licence = COALESCE(dataset_versions.licence, excluded.licence),
           shape = COALESCE(dataset_versions.shape, excluded.shape),
           derived_from = COALESCE(dataset_versions.derived_from, excluded.derived_from),
           transform = COALESCE(dataset_versions.transform, excluded.transform)",
    )
    .bind(&v.version)
    .bind(v.rows as i64)
    .bind(v.bytes as i64)
    .bind(&v.format)
    .bind(v.shape.as_deref())
    .bind(&v.source)
    .bind(v.licence.as_deref())
    .bind(v.derived_from.as_deref())
    .bind(v.transform.as_ref().map(|t| t.to_string()))
    .bind(v.created_ms)
    .execute(&mut *tx)
    .await
    .map_err(q("record dataset version"))?;
    Ok(())
}
