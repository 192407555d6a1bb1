//! Start-up warnings about backups that protect against less than they seem to (no
//! backup, the same directory, nested directories, the same filesystem).

use super::loc::Loc;

/// Warnings about backups that protect against less than they seem to.
pub(super) fn placement_warnings(locs: &[Loc]) -> Vec<String> {
    let mut out = Vec::new();
    if locs.len() == 1 {
        out.push(format!(
            "the vault has no backup location: losing {} loses every credential; add a backup on another disk",
            locs[0].location.label()
        ));
    }
    let Some((p_path, p_dev)) = locs[0].location.filesystem() else {
        return out;
    };
    for loc in &locs[1..] {
        let Some((path, dev)) = loc.location.filesystem() else {
            continue;
        };
        if path == p_path {
            out.push(format!(
                "{} is the same directory as the primary; it protects against nothing: point it at another disk",
                loc.label()
            ));
        } else if path.starts_with(&p_path) || p_path.starts_with(&path) {
            out.push(format!(
                "{} and the primary {} are nested in each other; put the backup on another disk",
                loc.label(),
                p_path.display()
            ));
        } else if dev == p_dev {
            out.push(format!(
                "{} is on the same filesystem as the primary {} (device {dev:#x}); a disk failure loses both: put it on another disk",
                loc.label(),
                p_path.display()
            ));
        }
    }
    out
}
