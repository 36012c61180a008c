//! ICY metadata (SHOUTcast/Icecast): every `metaint` bytes of audio, one length byte `N`
//! then `16 * N` bytes of `StreamTitle='...';` padded with zeros; `N = 0` when the title has
//! not changed since the last block. Only for clients that asked with `Icy-MetaData: 1`.

/// The interval the stream announces in `icy-metaint`.
pub const METAINT: usize = 16_000;

/// Interleaves metadata blocks into a client's audio.
#[derive(Debug)]
pub struct IcyWriter {
    metaint: usize,
    until_meta: usize,
    sent_title: Option<String>,
}

impl IcyWriter {
    pub fn new(metaint: usize) -> Self {
        Self {
            metaint: metaint.max(1),
            until_meta: metaint.max(1),
            sent_title: None,
        }
    }

    /// Appends `audio` to `out`, with a metadata block wherever the interval falls; `title`
    /// is what is playing in these bytes.
    pub fn write(&mut self, mut audio: &[u8], title: &str, out: &mut Vec<u8>) {
        while !audio.is_empty() {
            let n = audio.len().min(self.until_meta);
            out.extend_from_slice(&audio[..n]);
            audio = &audio[n..];
            self.until_meta -= n;
            if self.until_meta == 0 {
                self.until_meta = self.metaint;
                if self.sent_title.as_deref() == Some(title) {
                    out.push(0);
                } else {
                    out.extend_from_slice(&block(title));
                    self.sent_title = Some(title.to_string());
                }
            }
        }
    }
}

/// One metadata block for `title`. Quotes and semicolons that would end the value early are
/// replaced; the text is cut to fit the 255 * 16 bytes a block can hold.
pub fn block(title: &str) -> Vec<u8> {
    let clean: String = title
        .chars()
        .map(|c| match c {
            '\'' => '\u{2019}',
            ';' => ',',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect();
    let mut text = format!("StreamTitle='{clean}';").into_bytes();
    if text.len() > 255 * 16 {
        text.truncate(255 * 16 - 2);
        // Do not leave half a UTF-8 character.
        while std::str::from_utf8(&text).is_err() {
            text.pop();
        }
        text.extend_from_slice(b"';");
    }
    let blocks = text.len().div_ceil(16);
    let mut out = Vec::with_capacity(1 + blocks * 16);
    out.push(blocks as u8);
    out.extend_from_slice(&text);
    out.resize(1 + blocks * 16, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits an ICY stream back into audio and the titles at their audio positions.
    fn split(stream: &[u8], metaint: usize) -> (Vec<u8>, Vec<(usize, String)>) {
        let (mut audio, mut titles, mut pos) = (Vec::new(), Vec::new(), 0);
        while pos < stream.len() {
            let n = metaint.min(stream.len() - pos);
            audio.extend_from_slice(&stream[pos..pos + n]);
            pos += n;
            if n < metaint || pos >= stream.len() {
                break;
            }
            let len = stream[pos] as usize * 16;
            let text = String::from_utf8_lossy(&stream[pos + 1..pos + 1 + len]);
            if len > 0 {
                titles.push((audio.len(), text.trim_end_matches('\0').to_string()));
            }
            pos += 1 + len;
        }
        (audio, titles)
    }

    #[test]
    fn blocks_fall_every_metaint_bytes_and_repeat_as_zero() {
        let mut w = IcyWriter::new(100);
        let mut out = Vec::new();
        let a: Vec<u8> = (0..250u32).map(|i| i as u8).collect();
        w.write(&a[..30], "A - One", &mut out);
        w.write(&a[30..150], "A - One", &mut out);
        w.write(&a[150..], "B - Two's", &mut out);
        let (audio, titles) = split(&out, 100);
        assert_eq!(audio, a);
        assert_eq!(
            titles,
            vec![
                (100, "StreamTitle='A - One';".into()),
                (200, "StreamTitle='B - Two\u{2019}s';".into())
            ]
        );
        // The unchanged title at 100 -> 200 would be a zero byte: check one.
        let mut w = IcyWriter::new(10);
        let mut out = Vec::new();
        w.write(&[1; 20], "T", &mut out);
        let first = block("T");
        assert_eq!(first.len(), 17, "StreamTitle='T'; is one 16-byte block");
        assert_eq!(&out[10..27], &first[..], "the title first");
        assert_eq!(out[10 + first.len() + 10], 0, "then a zero-length block");
    }

    #[test]
    fn long_titles_are_cut_whole() {
        let b = block(&"é".repeat(5000));
        assert_eq!(b[0], 255);
        assert_eq!(b.len(), 1 + 255 * 16);
        let text = std::str::from_utf8(&b[1..])
            .unwrap_or("")
            .trim_end_matches('\0')
            .to_string();
        assert!(text.ends_with("';"));
    }
}
