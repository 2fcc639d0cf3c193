//! Inputs the encoder ports are checked with, shared by their tests.

/// Deterministic mixed input: text runs, pseudo-random bytes, byte runs.
/// Seed 0 is the input the recorded Go outputs were made from.
pub(crate) fn mixed(n: usize, seed: u32) -> Vec<u8> {
    const TEXT: &[u8] = b"The quick brown fox jumps over the lazy dog; tender layer 0123456789.\n";
    let mut x: u32 = 0x9e37_79b9 ^ seed;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let r = next();
        let run = (r % 300) as usize + 1;
        match r >> 30 {
            0 | 1 => {
                let start = (r >> 8) as usize;
                out.extend((0..run).map(|i| TEXT[(start + i) % TEXT.len()]));
            }
            2 => out.extend((0..run).map(|_| next() as u8)),
            _ => out.extend(std::iter::repeat_n((r >> 16) as u8, run)),
        }
    }
    out.truncate(n);
    out
}

/// A tar of this machine's real binaries (/usr/bin, in name order), files
/// of at most `max_file` bytes up to `limit` bytes in all; `edit` may
/// change the first file's bytes (to make a second version of the layer).
pub(crate) fn binaries_tar(limit: usize, max_file: usize, edit: impl Fn(&mut [u8])) -> Vec<u8> {
    let mut paths: Vec<_> = std::fs::read_dir("/usr/bin")
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    let mut builder = tar::Builder::new(Vec::new());
    let mut total = 0;
    for path in paths {
        let Ok(mut data) = std::fs::read(&path) else {
            continue;
        };
        if data.len() > max_file || total + data.len() > limit {
            continue;
        }
        if total == 0 {
            edit(&mut data);
        }
        total += data.len();
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o755);
        header.set_mtime(1_700_000_000);
        header.set_cksum();
        let name = path.strip_prefix("/").unwrap();
        builder.append_data(&mut header, name, &data[..]).unwrap();
    }
    builder.into_inner().unwrap()
}
