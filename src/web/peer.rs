//! A peer's [`Actions`]: what its status page can do, carried out as the
//! REPL's `download`, `cancel`, `resume`, `share`, `unshare` and `limit`
//! are, with the same error texts. What the
//! page starts or cancels is said on the console too, so a person at the
//! terminal sees it.

use std::sync::Arc;

use super::actions::{
    ActionError, Actions, Cancelling, Candidate, Caps, ShareView, Started, Unshared,
};
use crate::console::say;
use crate::net::rate::{format_rate, parse_rate};
use crate::net::stop::StopSignal;
use crate::peer::library::SharedFile;
use crate::peer::{background, link_of, resume, Peer, PeerError};
use crate::storage::StoreError;
use crate::ui::repl::command::expand_home;
use crate::ui::report::{found_line, Refused};

/// The actions of `peer`'s status page.
pub struct PeerActions(pub Arc<Peer>);

impl Actions for PeerActions {
    fn download(&self, target: &str, out: Option<&str>) -> Result<Started, ActionError> {
        if target.is_empty() {
            return Err(ActionError::Invalid(
                "nothing to download: give a ticket, link, name or id".into(),
                Vec::new(),
            ));
        }
        let out = out.map(expand_home);
        // Its own cancel token, never stopped: the REPL's Ctrl+C is not for it.
        let stop = StopSignal::new();
        let started =
            background::start(&self.0, target, out.as_deref(), &[], &stop).map_err(refusal)?;
        say(format!("status page: {}", found_line(&started)));
        Ok(started_view(&started))
    }

    fn cancel(&self, key: u64) -> Result<Cancelling, ActionError> {
        let downloads = self.0.downloads();
        let running = downloads.running().into_iter().find(|d| d.key() == key);
        let no_such =
            || ActionError::NotFound(Refused::NoSuchDownload(key.to_string()).to_string());
        let d = running.ok_or_else(no_such)?;
        if !downloads.cancel(key) {
            // It ended between the look and the cancel.
            return Err(no_such());
        }
        say(format!(
            "status page: cancelling download [{key}] {} (verified chunks are kept)",
            d.name()
        ));
        Ok(Cancelling {
            key,
            name: d.name().to_string(),
        })
    }

    fn shares(&self) -> Vec<ShareView> {
        self.0
            .library()
            .list()
            .iter()
            .map(|f| self.view(f))
            .collect()
    }

    fn share(&self, path: &str, private: bool) -> Result<ShareView, ActionError> {
        if path.is_empty() {
            return Err(ActionError::Invalid(
                "nothing to share: give the path of a file on the peer's machine".into(),
                Vec::new(),
            ));
        }
        let path = expand_home(path);
        let (file, warning) = self.0.share(&path, private).map_err(refusal)?;
        say(format!(
            "status page: shared {} (id {})",
            path.display(),
            file.id
        ));
        if let Some(w) = warning {
            say(format!(
                "warning: {w}; shared locally, will announce when the tracker is back"
            ));
        }
        Ok(self.view(&file))
    }

    fn unshare(&self, target: &str) -> Result<Unshared, ActionError> {
        let file = self.0.unshare(target).map_err(refusal)?;
        say(format!(
            "status page: stopped sharing {} (id {})",
            file.name, file.id
        ));
        Ok(Unshared {
            id: file.id.to_hex(),
            name: file.name.clone(),
        })
    }

    fn resume(&self, which: Option<&str>) -> Result<Vec<Started>, ActionError> {
        let chosen = resume::chosen(&self.0, which);
        if chosen.is_empty() {
            return Err(ActionError::NotFound("nothing to resume".into()));
        }
        let stop = StopSignal::new();
        let mut started = Vec::new();
        for u in &chosen {
            match resume::resume_one(&self.0, u, &stop) {
                Ok(Some(s)) => {
                    say(format!("status page: {}", found_line(&s)));
                    started.push(started_view(&s));
                }
                Ok(None) => {}
                Err(e) if chosen.len() == 1 => return Err(refusal(e)),
                Err(e) => say(format!("error: cannot resume {}: {e}", u.name)),
            }
        }
        Ok(started)
    }

    fn limit(&self, up: Option<&str>, down: Option<&str>) -> Result<Caps, ActionError> {
        let parse = |r: Option<&str>| {
            r.map(parse_rate)
                .transpose()
                .map_err(|e| ActionError::Invalid(e.to_string(), Vec::new()))
        };
        // Both checked before either is set: a bad request changes nothing.
        let (up, down) = (parse(up)?, parse(down)?);
        let rates = self.0.rates();
        if let Some(rate) = up {
            rates.up.set(rate);
        }
        if let Some(rate) = down {
            rates.down.set(rate);
        }
        let caps = Caps {
            upload: rates.up.get(),
            download: rates.down.get(),
        };
        say(format!(
            "status page: limits: upload {}, download {}",
            format_rate(caps.upload),
            format_rate(caps.download)
        ));
        Ok(caps)
    }
}

impl PeerActions {
    fn view(&self, f: &SharedFile) -> ShareView {
        ShareView {
            id: f.id.to_hex(),
            name: f.name.clone(),
            private: f.secret.is_some(),
            link: link_of(f).to_string(),
            ticket: self.0.ticket_of(f).to_string(),
        }
    }
}

/// What the page shows of a download it started.
fn started_view(started: &background::Started) -> Started {
    Started {
        key: started.key,
        name: started.file.name.clone(),
        id: started.file.id.to_hex(),
        size: started.file.size,
        peers: started.file.peers.len(),
        out: started.out.display().to_string(),
    }
}

/// The page's answer to a download the peer refused: the REPL's error line
/// (without `error: `), classed by whose move it is.
fn refusal(e: PeerError) -> ActionError {
    let text = |e: PeerError| e.to_string();
    match e {
        PeerError::Ambiguous { target, candidates } => ActionError::Invalid(
            Refused::Ambiguous(target).to_string(),
            candidates
                .into_iter()
                .map(|c| Candidate {
                    id: c.id.to_hex(),
                    name: c.name,
                    size: c.size,
                    peers: c.peers,
                })
                .collect(),
        ),
        e @ (PeerError::NotFound(_)
        | PeerError::DidYouMean { .. }
        | PeerError::NoPeers(..)
        | PeerError::Unreachable(..)
        | PeerError::NotShared(_)) => ActionError::NotFound(text(e)),
        e @ (PeerError::Store(
            StoreError::Exists(_)
            | StoreError::Locked { .. }
            | StoreError::Foreign { .. }
            | StoreError::Symlink(_),
        )
        | PeerError::OutputBusy { .. }) => ActionError::Conflict(text(e)),
        e @ (PeerError::Tracker { .. } | PeerError::Dht(_) | PeerError::Download(_)) => {
            ActionError::Upstream(text(e))
        }
        e @ (PeerError::Spawn(_) | PeerError::Bind { .. } | PeerError::Tls(_)) => {
            ActionError::Internal(text(e))
        }
        e => ActionError::Invalid(text(e), Vec::new()),
    }
}
