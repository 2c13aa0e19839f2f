//! Reading a build's log by line number and searching it, without reading the whole file:
//! beside the log, an index holds where every [`LINE_INDEX_STRIDE`]-th line starts.
//!
//! The index (`build.log.index`) is a list of little-endian 64-bit byte offsets: entry `k`
//! is where line `k * LINE_INDEX_STRIDE + 1` starts. A log without one is read from its
//! start.

use std::path::{Path, PathBuf};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncSeekExt, BufReader};

/// Every how many lines the index records an offset.
pub const LINE_INDEX_STRIDE: i64 = 1000;

/// The most lines one slice returns.
pub const MAX_SLICE_LINES: u64 = 1000;

/// The most matches one search returns.
pub const MAX_MATCHES: usize = 200;

/// The longest search text, in characters.
pub const MAX_QUERY_CHARS: usize = 256;

/// The index of the log at `log`.
pub fn index_path(log: &Path) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(".index");
    PathBuf::from(name)
}

/// Where line `line` (from 1) starts, as near as the index knows: the offset of an
/// earlier or the same line, and that line's number.
async fn seek_point(log: &Path, line: u64) -> std::io::Result<(u64, u64)> {
    let stride = LINE_INDEX_STRIDE.unsigned_abs();
    let entry = (line.saturating_sub(1)) / stride;
    let mut index = match tokio::fs::File::open(index_path(log)).await {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((0, 1)),
        Err(e) => return Err(e),
    };
    let entries = index.metadata().await?.len() / 8;
    if entries == 0 {
        return Ok((0, 1));
    }
    let entry = entry.min(entries - 1);
    index.seek(std::io::SeekFrom::Start(entry * 8)).await?;
    let mut bytes = [0u8; 8];
    index.read_exact(&mut bytes).await?;
    Ok((u64::from_le_bytes(bytes), entry * stride + 1))
}

/// Opens the log at `log` positioned at the start of line `line`; `None` when there is no
/// log or it has fewer lines.
async fn open_at(log: &Path, line: u64) -> std::io::Result<Option<BufReader<tokio::fs::File>>> {
    let mut file = match tokio::fs::File::open(log).await {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let (offset, mut at) = seek_point(log, line).await?;
    file.seek(std::io::SeekFrom::Start(offset)).await?;
    let mut reader = BufReader::new(file);
    let mut skipped = Vec::new();
    while at < line {
        skipped.clear();
        if reader.read_until(b'\n', &mut skipped).await? == 0 {
            return Ok(None);
        }
        at += 1;
    }
    Ok(Some(reader))
}

/// How many lines and bytes the log at `log` holds (none when there is no log), read
/// from its last indexed line on.
pub async fn extent(log: &Path) -> std::io::Result<(u64, u64)> {
    let bytes = match tokio::fs::metadata(log).await {
        Ok(meta) => meta.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((0, 0)),
        Err(e) => return Err(e),
    };
    let (offset, first) = seek_point(log, u64::MAX).await?;
    let mut file = tokio::fs::File::open(log).await?;
    file.seek(std::io::SeekFrom::Start(offset)).await?;
    let mut reader = BufReader::new(file);
    let mut lines = first - 1;
    let mut chunk = Vec::new();
    while reader.read_until(b'\n', &mut chunk).await? > 0 {
        lines += 1;
        chunk.clear();
    }
    Ok((lines, bytes))
}

/// Up to `count` lines of the log at `log` from line `first` (from 1), invalid UTF-8 shown
/// as replacement characters.
pub async fn lines(log: &Path, first: u64, count: u64) -> std::io::Result<Vec<String>> {
    let Some(mut reader) = open_at(log, first.max(1)).await? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    let mut bytes = Vec::new();
    while (out.len() as u64) < count.min(MAX_SLICE_LINES) {
        bytes.clear();
        if reader.read_until(b'\n', &mut bytes).await? == 0 {
            break;
        }
        let text = String::from_utf8_lossy(&bytes);
        out.push(text.trim_end_matches(['\n', '\r']).to_owned());
    }
    Ok(out)
}

/// Lines after line `after` containing `query` (ignoring case), as line number and text:
/// at most [`MAX_MATCHES`], and the line to go on after when there may be more.
pub async fn search(
    log: &Path,
    query: &str,
    after: u64,
) -> std::io::Result<(Vec<(u64, String)>, Option<u64>)> {
    let needle = query.to_lowercase();
    let Some(mut reader) = open_at(log, after + 1).await? else {
        return Ok((Vec::new(), None));
    };
    let mut found = Vec::new();
    let mut bytes = Vec::new();
    let mut line = after;
    loop {
        bytes.clear();
        if reader.read_until(b'\n', &mut bytes).await? == 0 {
            return Ok((found, None));
        }
        line += 1;
        let text = String::from_utf8_lossy(&bytes);
        if text.to_lowercase().contains(&needle) {
            found.push((line, text.trim_end_matches(['\n', '\r']).to_owned()));
            if found.len() == MAX_MATCHES {
                return Ok((found, Some(line)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log of `n` lines `line N`, with an index as the build logs write it.
    async fn log(dir: &Path, n: u64, with_index: bool) -> PathBuf {
        let path = dir.join("build.log");
        let mut text = String::new();
        let mut index = Vec::new();
        for line in 1..=n {
            if (line - 1) % LINE_INDEX_STRIDE.unsigned_abs() == 0 {
                index.extend_from_slice(&(text.len() as u64).to_le_bytes());
            }
            text.push_str(&format!("line {line}\n"));
        }
        std::fs::write(&path, text).unwrap();
        if with_index {
            std::fs::write(index_path(&path), index).unwrap();
        }
        path
    }

    #[tokio::test]
    async fn a_logs_length_is_counted_from_its_last_indexed_line() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(extent(&dir.path().join("none.log")).await.unwrap(), (0, 0));
        for with_index in [true, false] {
            let path = log(dir.path(), 5_500, with_index).await;
            let bytes = std::fs::metadata(&path).unwrap().len();
            assert_eq!(extent(&path).await.unwrap(), (5_500, bytes));
        }
        let path = log(dir.path(), 3_000, true).await;
        let bytes = std::fs::metadata(&path).unwrap().len();
        assert_eq!(extent(&path).await.unwrap(), (3_000, bytes));
    }

    #[tokio::test]
    async fn lines_are_found_by_number_with_or_without_the_index() {
        let dir = tempfile::tempdir().unwrap();
        for with_index in [true, false] {
            let path = log(dir.path(), 5_500, with_index).await;
            assert_eq!(lines(&path, 1, 2).await.unwrap(), ["line 1", "line 2"]);
            assert_eq!(
                lines(&path, 1000, 3).await.unwrap(),
                ["line 1000", "line 1001", "line 1002"]
            );
            assert_eq!(
                lines(&path, 5_499, 10).await.unwrap(),
                ["line 5499", "line 5500"]
            );
            assert!(lines(&path, 5_501, 10).await.unwrap().is_empty());
            assert_eq!(lines(&path, 1, 5_000).await.unwrap().len(), 1000);
            let (found, more) = search(&path, "LINE 42", 0).await.unwrap();
            let numbers: Vec<u64> = found.iter().map(|(n, _)| *n).collect();
            assert_eq!(&numbers[..3], [42, 420, 421]);
            assert_eq!(more, None);
            let (found, _) = search(&path, "line 5", 4_000).await.unwrap();
            assert_eq!(found[0], (5_000, "line 5000".to_owned()));
        }
        let missing = dir.path().join("none.log");
        assert!(lines(&missing, 1, 10).await.unwrap().is_empty());
        assert_eq!(search(&missing, "x", 0).await.unwrap(), (Vec::new(), None));
    }

    #[tokio::test]
    async fn searches_stop_at_their_limit_and_say_where_to_go_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = log(dir.path(), 1_000, true).await;
        let (found, more) = search(&path, "line", 0).await.unwrap();
        assert_eq!(found.len(), MAX_MATCHES);
        assert_eq!(more, Some(MAX_MATCHES as u64));
        let (found, _) = search(&path, "line", more.unwrap()).await.unwrap();
        assert_eq!(found[0].0, MAX_MATCHES as u64 + 1);
    }
}
