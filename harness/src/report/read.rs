//! Reading a result folder back: `summary.csv`, `run.json`, and a threshold search's
//! `probes.csv` and `threshold.json`, which are small whatever a run's length; the long
//! files (`timeseries.csv`, `latency.csv`, `steal_timeseries.csv`) are only located
//! here, and read row by row, as numbers, by whoever needs them.
//!
//! Columns are read by name, as text, so columns added later (by other commands or newer
//! versions) reach plots, `check` and `compare` without code here knowing them; a column
//! that an older folder lacks is simply absent. Plots, `check` and `compare` read only
//! through this module: what they answer depends on the stored files alone.

use serde_json::Value;
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

/// A result file that could not be read, with its path.
#[derive(Debug, thiserror::Error)]
#[error("{}: {what}", path.display())]
pub struct ReadError {
    pub path: PathBuf,
    pub what: String,
}

impl ReadError {
    fn new(path: &Path, what: impl ToString) -> ReadError {
        ReadError {
            path: path.to_path_buf(),
            what: what.to_string(),
        }
    }
}

/// A CSV file as text cells, addressed by column name.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub columns: Vec<String>,
    index: HashMap<String, usize>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// A table from a header and rows (rows shorter than the header read as empty cells).
    pub fn new(columns: Vec<String>, rows: Vec<Vec<String>>) -> Table {
        let index = columns
            .iter()
            .enumerate()
            .map(|(i, c)| (c.clone(), i))
            .collect();
        Table {
            columns,
            index,
            rows,
        }
    }

    pub fn read(path: &Path) -> Result<Table, ReadError> {
        let mut r = csv::ReaderBuilder::new()
            .flexible(true)
            .from_path(path)
            .map_err(|e| ReadError::new(path, e))?;
        let columns: Vec<String> = r
            .headers()
            .map_err(|e| ReadError::new(path, e))?
            .iter()
            .map(str::to_string)
            .collect();
        let mut rows = Vec::new();
        for rec in r.records() {
            let rec = rec.map_err(|e| ReadError::new(path, e))?;
            rows.push(rec.iter().map(str::to_string).collect());
        }
        Ok(Table::new(columns, rows))
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn has(&self, column: &str) -> bool {
        self.index.contains_key(column)
    }

    /// The cell as text: None when the column does not exist, "" when it is empty.
    pub fn get(&self, row: usize, column: &str) -> Option<&str> {
        let i = *self.index.get(column)?;
        Some(self.rows[row].get(i).map(String::as_str).unwrap_or(""))
    }

    /// The cell as a number: None when absent, empty or not a number.
    pub fn num(&self, row: usize, column: &str) -> Option<f64> {
        self.get(row, column)?.trim().parse().ok()
    }

    /// The cell as text, "" when the column does not exist.
    pub fn text(&self, row: usize, column: &str) -> &str {
        self.get(row, column).unwrap_or("")
    }

    /// Whether any row has a number in `column`.
    pub fn has_numbers(&self, column: &str) -> bool {
        (0..self.len()).any(|r| self.num(r, column).is_some())
    }

    /// Columns whose name starts with `param_` (the swept fields), in file order.
    pub fn param_columns(&self) -> Vec<String> {
        self.columns
            .iter()
            .filter(|c| c.starts_with("param_"))
            .cloned()
            .collect()
    }

    /// Row numbers whose `column` reads `value` (rows without the column read "").
    pub fn rows_where(&self, column: &str, value: &str) -> Vec<usize> {
        (0..self.len())
            .filter(|&r| self.text(r, column) == value)
            .collect()
    }
}

/// Everything a result folder holds; files that are absent are None.
#[derive(Debug, Clone)]
pub struct ResultDir {
    pub dir: PathBuf,
    pub summary: Option<Table>,
    /// The long files, when there (read row by row).
    pub timeseries: Option<PathBuf>,
    pub latency: Option<PathBuf>,
    /// run.json without its runs' raw data (the host, the plan, `complete`, `created`).
    pub run_json: Option<Value>,
    /// A threshold search's probes and findings (`find-threshold`).
    pub probes: Option<Table>,
    pub threshold: Option<Value>,
    /// The steal probe's stalls over time (`steal_timeseries.csv` of a scenario run).
    pub stalls: Option<PathBuf>,
}

fn read_optional_table(path: PathBuf) -> Result<Option<Table>, ReadError> {
    if path.exists() {
        Table::read(&path).map(Some)
    } else {
        Ok(None)
    }
}

fn read_optional_json(path: PathBuf) -> Result<Option<Value>, ReadError> {
    if !path.exists() {
        return Ok(None);
    }
    let text = fs::read_to_string(&path).map_err(|e| ReadError::new(&path, e))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| ReadError::new(&path, e))
}

fn present(path: PathBuf) -> Option<PathBuf> {
    path.exists().then_some(path)
}

/// run.json's head: what readers use. `runs` (with raw samples and units in folders of
/// earlier versions, hundreds of MB for a long run) is passed over, not kept.
#[derive(serde::Deserialize)]
struct RunJsonHead {
    #[serde(default)]
    schema_version: Value,
    #[serde(default)]
    created: Value,
    #[serde(default)]
    complete: Value,
    #[serde(default)]
    host: Value,
    #[serde(default)]
    plan: Value,
}

fn read_run_json(path: PathBuf) -> Result<Option<Value>, ReadError> {
    if !path.exists() {
        return Ok(None);
    }
    let f = fs::File::open(&path).map_err(|e| ReadError::new(&path, e))?;
    let head: RunJsonHead = serde_json::from_reader(std::io::BufReader::new(f))
        .map_err(|e| ReadError::new(&path, e))?;
    Ok(Some(serde_json::json!({
        "schema_version": head.schema_version,
        "created": head.created,
        "complete": head.complete,
        "host": head.host,
        "plan": head.plan,
    })))
}

impl ResultDir {
    /// Read a result folder of `run` (summary.csv) or `find-threshold` (probes.csv).
    pub fn open(dir: &Path) -> Result<ResultDir, ReadError> {
        if !dir.is_dir() {
            return Err(ReadError::new(dir, "not a folder"));
        }
        let r = ResultDir {
            dir: dir.to_path_buf(),
            summary: read_optional_table(dir.join("summary.csv"))?,
            timeseries: present(dir.join("timeseries.csv")),
            stalls: present(dir.join("steal_timeseries.csv")),
            latency: present(dir.join("latency.csv")),
            run_json: read_run_json(dir.join("run.json"))?,
            probes: read_optional_table(dir.join("probes.csv"))?,
            threshold: read_optional_json(dir.join("threshold.json"))?,
        };
        if r.summary.is_none() && r.probes.is_none() {
            return Err(ReadError::new(
                dir,
                "not a result folder: no summary.csv (throttlebench run) or probes.csv (find-threshold)",
            ));
        }
        Ok(r)
    }

    /// summary.csv, or an error saying the folder has none.
    pub fn summary(&self) -> Result<&Table, ReadError> {
        self.summary.as_ref().ok_or_else(|| {
            ReadError::new(
                &self.dir,
                "has no summary.csv (a threshold search's folder has probes.csv instead)",
            )
        })
    }

    /// The scenario's name: from the summary, run.json, or the folder's name.
    pub fn scenario_name(&self) -> String {
        if let Some(s) = &self.summary {
            if !s.is_empty() && !s.text(0, "scenario").is_empty() {
                return s.text(0, "scenario").to_string();
            }
        }
        if let Some(n) = self
            .run_json
            .as_ref()
            .and_then(|j| j.pointer("/plan/scenario/name"))
            .and_then(Value::as_str)
        {
            return n.to_string();
        }
        if let Some(t) = &self.threshold {
            if let Some(s) = t.get("scenario").and_then(Value::as_str) {
                return format!("threshold of {s}");
            }
            return "threshold of the machine".to_string();
        }
        self.dir
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default()
    }

    /// run.json's `complete`, when there is a run.json.
    pub fn complete(&self) -> Option<bool> {
        self.run_json.as_ref()?.get("complete")?.as_bool()
    }

    /// The `[expect]` table of the scenario that made this folder (from run.json).
    pub fn expectations(&self) -> Vec<(String, String)> {
        self.run_json
            .as_ref()
            .and_then(|j| j.pointer("/plan/scenario/expect"))
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The machine in one line, for captions: "2 vCPU AMD EPYC, Linux 6.18.44, cgroup v1".
    pub fn host_line(&self) -> Option<String> {
        let h = self.run_json.as_ref()?.get("host")?;
        let s = |k: &str| h.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let cpus = h.get("cpus").and_then(Value::as_u64).unwrap_or(0);
        let mut line = format!("{cpus} CPU {}", s("cpu_model"));
        if !s("kernel_release").is_empty() {
            line.push_str(&format!(", Linux {}", s("kernel_release")));
        }
        if !s("cgroup_version").is_empty() {
            line.push_str(&format!(", cgroup {}", s("cgroup_version")));
        }
        if !s("vm").is_empty() {
            line.push_str(&format!(" (in a VM: {})", s("vm")));
        }
        Some(line)
    }

    /// The planned run `run` from run.json (`plan.runs[]` entry with that index).
    pub fn planned_run(&self, run: usize) -> Option<&Value> {
        self.run_json
            .as_ref()?
            .pointer("/plan/runs")?
            .as_array()?
            .iter()
            .find(|r| r.get("index").and_then(Value::as_u64) == Some(run as u64))
    }

    /// The workload table of a planned run's group (older folders have one workload per run).
    pub fn planned_workload(&self, run: usize, group: &str) -> Option<&Value> {
        let r = self.planned_run(run)?;
        if let Some(groups) = r.get("groups").and_then(Value::as_array) {
            return groups
                .iter()
                .find(|g| g.get("name").and_then(Value::as_str) == Some(group))
                .or_else(|| groups.first())?
                .get("workload");
        }
        r.get("workload")
    }
}

/// A row's group ("main" in folders written before groups existed).
pub fn group_of(t: &Table, row: usize) -> String {
    match t.get(row, "group") {
        Some(g) if !g.is_empty() => g.to_string(),
        _ => "main".to_string(),
    }
}

/// A short label for a summary row: "run 2 (limiter.quota=40ms)", with the group when
/// the run has several.
pub fn run_label(t: &Table, row: usize) -> String {
    let mut s = format!("run {}", t.text(row, "run"));
    let params: Vec<String> = t
        .param_columns()
        .iter()
        .map(|c| format!("{}={}", &c["param_".len()..], t.text(row, c)))
        .collect();
    if !params.is_empty() {
        s.push_str(&format!(" ({})", params.join(", ")));
    }
    let group = group_of(t, row);
    if group != "main" {
        s.push_str(&format!(" {group}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_by_name() {
        let t = Table::new(
            vec!["run".into(), "param_limiter.quota".into(), "x".into()],
            vec![
                vec!["0".into(), "40ms".into(), "1.5".into()],
                vec!["1".into(), "80ms".into()],
            ],
        );
        assert_eq!(t.num(0, "x"), Some(1.5));
        assert_eq!(t.get(1, "x"), Some(""));
        assert_eq!(t.num(1, "x"), None);
        assert_eq!(t.get(0, "nope"), None);
        assert_eq!(t.param_columns(), vec!["param_limiter.quota".to_string()]);
        assert_eq!(run_label(&t, 1), "run 1 (limiter.quota=80ms)");
        assert_eq!(t.rows_where("param_limiter.quota", "40ms"), vec![0]);
    }
}
