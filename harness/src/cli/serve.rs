//! `--serve ADDR` of `run`, `watch` and `find-threshold`: the exposition and its HTTP
//! server, started before the first sample and stopped when the command ends.

use crate::exposition::{Exposition, Server};
use anyhow::Result;

/// Start serving at `addr`, when one is given; says where on stderr.
pub fn start(addr: Option<&str>) -> Result<Option<(Exposition, Server)>> {
    let Some(addr) = addr else {
        return Ok(None);
    };
    let exposition = Exposition::new();
    let server = Server::start(addr, exposition.clone())?;
    eprintln!(
        "throttlebench: serving metrics at http://{}/metrics",
        server.local_addr()
    );
    Ok(Some((exposition, server)))
}
