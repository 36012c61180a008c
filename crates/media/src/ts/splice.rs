//! The splice: clips' packets rewritten into one continuous transport stream.

use std::collections::HashMap;

use super::{
    pes_times_at, read_timestamp, write_timestamp, Packet, Program, MPEG2, NULL_PID, PACKET_LEN,
    PAT_PID, SYNC_BYTE, WRAP,
};

/// Splices clips into one continuous transport stream: each clip's timestamps moved onto the
/// stream's own timeline, continuity counters numbered on per PID, and the stream's own PAT
/// and PMT (a new version whenever the program changes) before every clip and keyframe.
#[derive(Debug, Default)]
pub struct Splicer {
    program: Option<Program>,
    version: u8,
    shift: u64,
    counters: HashMap<u16, u8>,
    padding: bool,
}

impl Splicer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps the clips' null packets: a constant-rate clip stays at its rate (players that
    /// meter a stream by its bytes see what they expect).
    pub fn keeping_padding() -> Self {
        Self {
            padding: true,
            ..Self::default()
        }
    }

    /// Starts a clip: its timestamps `t` become `t + shift` (mod 2^33) from here on.
    pub fn begin(&mut self, program: &Program, shift: u64) {
        if self.program.as_ref().is_some_and(|p| p != program) {
            self.version = (self.version + 1) % 32;
        }
        self.program = Some(program.clone());
        self.shift = shift % WRAP;
    }

    fn next_counter(&mut self, pid: u16) -> u8 {
        let c = self.counters.entry(pid).or_insert(15);
        *c = (*c + 1) % 16;
        *c
    }

    /// Writes the stream's PAT and PMT.
    pub fn tables(&mut self, out: &mut Vec<u8>) {
        let Some(program) = self.program.clone() else {
            return;
        };
        let mut pat = Vec::with_capacity(4);
        pat.extend_from_slice(&program.number.max(1).to_be_bytes());
        pat.extend_from_slice(&(0xE000 | program.pmt_pid).to_be_bytes());
        let cc = self.next_counter(PAT_PID);
        out.extend_from_slice(&section_packet(PAT_PID, 0, 1, self.version, &pat, cc));
        let mut pmt = Vec::new();
        pmt.extend_from_slice(&(0xE000 | program.pcr_pid).to_be_bytes());
        pmt.extend_from_slice(&(0xF000 | program.descriptors.len() as u16).to_be_bytes());
        pmt.extend_from_slice(&program.descriptors);
        for s in &program.streams {
            pmt.push(s.stream_type);
            pmt.extend_from_slice(&(0xE000 | s.pid).to_be_bytes());
            pmt.extend_from_slice(&(0xF000 | s.descriptors.len() as u16).to_be_bytes());
            pmt.extend_from_slice(&s.descriptors);
        }
        let cc = self.next_counter(program.pmt_pid);
        out.extend_from_slice(&section_packet(
            program.pmt_pid,
            2,
            program.number.max(1),
            self.version,
            &pmt,
            cc,
        ));
    }

    /// Writes one of the clip's packets, rewritten; tables, streams the program does not
    /// carry and (unless kept) null packets are left out (the stream writes its own tables).
    pub fn packet(&mut self, packet: &Packet<'_>, out: &mut Vec<u8>) {
        let Some(program) = &self.program else { return };
        let pid = packet.pid();
        if pid == NULL_PID && self.padding {
            out.extend_from_slice(packet.0);
            return;
        }
        if pid == PAT_PID || pid == NULL_PID || !program.carries(pid) {
            return;
        }
        let at = out.len();
        out.extend_from_slice(packet.0);
        let p = &mut out[at..at + PACKET_LEN];
        if packet.has_payload() {
            let cc = self.next_counter(pid);
            p[3] = (p[3] & 0xF0) | cc;
        } else {
            // A packet without payload repeats the counter.
            let cc = *self.counters.get(&pid).unwrap_or(&0);
            p[3] = (p[3] & 0xF0) | cc;
        }
        if let Some(base) = packet.pcr() {
            let b = &mut p[6..12];
            let v = (base + self.shift) % WRAP;
            b[0] = (v >> 25) as u8;
            b[1] = (v >> 17) as u8;
            b[2] = (v >> 9) as u8;
            b[3] = (v >> 1) as u8;
            b[4] = (b[4] & 0x7F) | (((v & 1) as u8) << 7);
        }
        if packet.unit_start() {
            let start = PACKET_LEN - packet.payload().len();
            if let Some(t) = pes_times_at(packet.payload()) {
                let two = p[start + 7] >> 6 == 3;
                let pts = start + t;
                if pts + 5 <= PACKET_LEN {
                    let v = read_timestamp(&p[pts..pts + 5]) + self.shift;
                    write_timestamp(&mut p[pts..pts + 5], v);
                }
                if two && pts + 10 <= PACKET_LEN {
                    let v = read_timestamp(&p[pts + 5..pts + 10]) + self.shift;
                    write_timestamp(&mut p[pts + 5..pts + 10], v);
                }
            }
        }
    }
}

/// A packet holding one whole PSI section.
fn section_packet(
    pid: u16,
    table_id: u8,
    extension: u16,
    version: u8,
    body: &[u8],
    cc: u8,
) -> [u8; PACKET_LEN] {
    let mut p = [0xFF; PACKET_LEN];
    p[0] = SYNC_BYTE;
    p[1..3].copy_from_slice(&(0x4000 | pid).to_be_bytes());
    p[3] = 0x10 | (cc & 0x0F);
    p[4] = 0; // pointer field
    let len = 5 + body.len() + 4;
    let mut s = Vec::with_capacity(3 + len);
    s.push(table_id);
    s.extend_from_slice(&(0xB000 | len as u16).to_be_bytes());
    s.extend_from_slice(&extension.to_be_bytes());
    s.push(0xC1 | ((version & 0x1F) << 1));
    s.extend_from_slice(&[0, 0]);
    s.extend_from_slice(body);
    let crc = MPEG2.checksum(&s);
    s.extend_from_slice(&crc.to_be_bytes());
    let n = s.len().min(PACKET_LEN - 5);
    p[5..5 + n].copy_from_slice(&s[..n]);
    p
}
