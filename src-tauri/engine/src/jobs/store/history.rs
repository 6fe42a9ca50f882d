//! Finished jobs as history: deleting them, the retention policy, and the
//! figures the UI shows.

use super::Store;
use crate::jobs::model::{now_ms, StoreEvent};
use crate::jobs::JobsResult;
use std::time::Duration;

/// How much finished history to keep.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub keep_last: usize,
    pub max_age: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            keep_last: 500,
            max_age: Duration::from_secs(90 * 24 * 3600),
        }
    }
}

/// History figures for the UI.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Stats {
    pub done: u64,
    pub failed: u64,
    pub cancelled: u64,
    /// done / (done + failed), or None when nothing finished yet.
    pub success_rate: Option<f64>,
}

impl Store {
    /// Deletes finished jobs (all of them, or the given ones); returns how many.
    pub fn clear_history(&self, only: Option<&[String]>) -> JobsResult<usize> {
        let ids: Vec<String> = {
            let conn = self.conn()?;
            let mut stmt =
                conn.prepare("SELECT id FROM jobs WHERE state IN ('done', 'failed', 'cancelled')")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            rows.collect::<rusqlite::Result<Vec<_>>>()?
                .into_iter()
                .filter(|id| only.is_none_or(|o| o.contains(id)))
                .collect()
        };
        self.delete(&ids)
    }

    fn delete(&self, ids: &[String]) -> JobsResult<usize> {
        {
            let mut conn = self.conn()?;
            let tx = Store::write_tx(&mut conn)?;
            for id in ids {
                tx.execute("DELETE FROM jobs WHERE id = ?1", [id])?;
            }
            tx.commit()?;
        }
        for id in ids {
            let _ = self.events.send(StoreEvent::JobRemoved { id: id.clone() });
        }
        Ok(ids.len())
    }

    /// Applies the retention policy to finished jobs: keeps the newest
    /// `keep_last`, and none older than `max_age`.
    pub fn prune(&self, retention: Retention) -> JobsResult<usize> {
        let cutoff = now_ms() - retention.max_age.as_millis() as i64;
        let ids: Vec<String> = {
            let conn = self.conn()?;
            let mut stmt = conn.prepare(
                "SELECT id, COALESCE(finished_at, created_at) FROM jobs WHERE state IN ('done', 'failed', 'cancelled')
                 ORDER BY COALESCE(finished_at, created_at) DESC, rowid DESC",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            let all = rows.collect::<rusqlite::Result<Vec<_>>>()?;
            all.into_iter()
                .enumerate()
                .filter(|(i, (_, t))| *i >= retention.keep_last || *t < cutoff)
                .map(|(_, (id, _))| id)
                .collect()
        };
        self.delete(&ids)
    }

    pub fn stats(&self) -> JobsResult<Stats> {
        let conn = self.conn()?;
        let count = |state: &str| -> rusqlite::Result<u64> {
            conn.query_row("SELECT COUNT(*) FROM jobs WHERE state = ?1", [state], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n as u64)
        };
        let (done, failed, cancelled) = (count("done")?, count("failed")?, count("cancelled")?);
        Ok(Stats {
            done,
            failed,
            cancelled,
            success_rate: (done + failed > 0).then(|| done as f64 / (done + failed) as f64),
        })
    }
}
