//! The transport stream helpers on packets made here.

use std::collections::HashMap;

use super::*;

/// A packet of `pid` whose payload is `payload`, padded by an adaptation field.
fn packet(pid: u16, start: bool, af: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut p = vec![
        SYNC_BYTE,
        ((pid >> 8) as u8) | if start { 0x40 } else { 0 },
        pid as u8,
    ];
    let room = PACKET_LEN - 4 - payload.len();
    if room == 0 && af.is_empty() {
        p.push(0x10);
    } else {
        p.push(0x30);
        let len = room - 1;
        p.push(len as u8);
        let mut field = af.to_vec();
        if field.is_empty() && len > 0 {
            field.push(0);
        }
        field.resize(len, 0xFF);
        p.extend_from_slice(&field);
    }
    p.extend_from_slice(payload);
    assert_eq!(p.len(), PACKET_LEN);
    p
}

fn pes(pts: u64, dts: Option<u64>, es: &[u8]) -> Vec<u8> {
    let mut p = vec![0, 0, 1, 0xE0, 0, 0, 0x80];
    let mut t = [0u8; 5];
    match dts {
        Some(d) => {
            p.extend_from_slice(&[0xC0, 10]);
            t[0] = 0x31;
            write_timestamp(&mut t, pts);
            p.extend_from_slice(&t);
            t[0] = 0x11;
            write_timestamp(&mut t, d);
            p.extend_from_slice(&t);
        }
        None => {
            p.extend_from_slice(&[0x80, 5]);
            t[0] = 0x21;
            write_timestamp(&mut t, pts);
            p.extend_from_slice(&t);
        }
    }
    p.extend_from_slice(es);
    p
}

fn program() -> Program {
    Program {
        number: 1,
        pmt_pid: 0x1000,
        pcr_pid: 0x100,
        descriptors: vec![],
        streams: vec![
            Stream {
                pid: 0x100,
                stream_type: STREAM_H264,
                descriptors: vec![],
            },
            Stream {
                pid: 0x101,
                stream_type: STREAM_AAC_ADTS,
                descriptors: vec![0x0A, 4, b'e', b'n', b'g', 0],
            },
        ],
    }
}

/// A clip of `seconds` at 25 pictures a second, a keyframe every `gop` pictures, PTS
/// from `zero`, each picture one packet with a PCR.
fn clip(zero: u64, seconds: u64, gop: u64) -> Vec<u8> {
    let mut splicer = Splicer::new();
    splicer.begin(&program(), 0);
    let mut out = Vec::new();
    splicer.tables(&mut out);
    for n in 0..seconds * 25 {
        let pts = zero + n * 3600;
        let key = n % gop == 0;
        let es: &[u8] = if key {
            &[0, 0, 0, 1, 0x67, 1]
        } else {
            &[0, 0, 0, 1, 0x41, 1]
        };
        let pcr = pts - 9000;
        let af = [
            0x10,
            (pcr >> 25) as u8,
            (pcr >> 17) as u8,
            (pcr >> 9) as u8,
            (pcr >> 1) as u8,
            ((pcr & 1) as u8) << 7 | 0x7E,
            0,
        ];
        out.extend(packet(0x100, true, &af, &pes(pts, Some(pts - 3600), es)));
    }
    out
}

#[test]
fn timestamps_round_trip() {
    let mut b = [0x21, 0, 0, 0, 0];
    for v in [0, 1, 90_000, WRAP - 1, 0x1_2345_6789] {
        write_timestamp(&mut b, v);
        assert_eq!(read_timestamp(&b), v);
        assert_eq!(b[0] >> 4, 2, "the prefix is kept");
    }
}

#[test]
fn the_clock_wraps_the_short_way() {
    assert_eq!(ticks_between(5, WRAP - 5), 10);
    assert_eq!(ticks_between(WRAP - 5, 5), -10);
    assert_eq!(ticks_between(90_000, 0), 90_000);
}

#[test]
fn tables_written_are_read_back() {
    let mut s = Splicer::new();
    s.begin(&program(), 0);
    let mut out = Vec::new();
    s.tables(&mut out);
    assert_eq!(out.len(), 2 * PACKET_LEN);
    assert_eq!(find_program(&out), Some(program()));
}

#[test]
fn a_clip_is_measured_by_its_timestamps() {
    let data = clip(WRAP - 90_000, 8, 50); // wraps one second in
    let info = scan(&data).unwrap();
    assert_eq!(info.duration, Duration::from_secs(8));
    assert_eq!(info.zero, WRAP - 90_000);
    let times: Vec<i64> = info.keyframes.iter().map(|k| k.time / 90_000).collect();
    assert_eq!(times, [0, 2, 4, 6]);
    assert_eq!(
        info.keyframes[1].offset,
        (2 * PACKET_LEN + 50 * PACKET_LEN) as u64
    );
}

#[test]
fn a_clip_with_rare_keyframes_is_refused() {
    let err = scan(&clip(90_000, 14, 150)).unwrap_err();
    assert!(matches!(err, TsError::KeyframeGap { .. }), "{err}");
}

#[test]
fn bytes_that_are_not_packets_are_refused() {
    let mut data = clip(90_000, 2, 50);
    assert!(matches!(
        scan(&data[1..]),
        Err(TsError::NotPackets { offset: 0 })
    ));
    assert_eq!(scan(&data[2 * PACKET_LEN..]), Err(TsError::NoTables));
    data.truncate(data.len() - 1);
    assert!(matches!(scan(&data), Err(TsError::NotPackets { .. })));
}

#[test]
fn the_splice_moves_timestamps_and_numbers_counters_on() {
    let a = clip(90_000, 2, 50);
    let mut s = Splicer::new();
    let mut out = Vec::new();
    for round in 0..2u64 {
        s.begin(&program(), round * 180_000);
        s.tables(&mut out);
        for c in a.chunks_exact(PACKET_LEN) {
            s.packet(&Packet::new(c).unwrap(), &mut out);
        }
    }
    let mut last_cc: HashMap<u16, u8> = HashMap::new();
    let mut pts = Vec::new();
    for c in out.chunks_exact(PACKET_LEN) {
        let p = Packet::new(c).unwrap();
        let cc = c[3] & 0x0F;
        if let Some(prev) = last_cc.insert(p.pid(), cc) {
            assert_eq!(cc, (prev + 1) % 16, "pid {}", p.pid());
        }
        if let Some((t, d)) = p.pes_times() {
            assert_eq!(t - d, 3600);
            assert_eq!(p.pcr(), Some(t - 9000));
            pts.push(t);
        }
    }
    assert_eq!(pts.len(), 100);
    assert!(pts.windows(2).all(|w| w[1] - w[0] == 3600), "continuous");
    // The same program twice: one version of the tables.
    assert_eq!(find_program(&out), Some(program()));
}
