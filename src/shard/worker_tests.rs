//! The timer's grid slots (`worker::timer_slot`), with synthetic time.

use super::*;

#[test]
fn deadlines_share_grid_slots_unless_urgent() {
    let epoch = clock::mono();
    let ms = |n| epoch + Duration::from_millis(n);
    let now = ms(100);
    assert_eq!(
        timer_slot(epoch, now, ms(101), false),
        ms(101),
        "urgent: exact"
    );
    assert_eq!(
        timer_slot(epoch, now, ms(99), false),
        ms(99),
        "overdue: exact"
    );
    assert_eq!(timer_slot(epoch, now, ms(103), false), ms(120));
    assert_eq!(timer_slot(epoch, now, ms(119), false), ms(120));
    assert_eq!(timer_slot(epoch, now, ms(120), false), ms(120));
    assert_eq!(timer_slot(epoch, now, ms(121), false), ms(140));
    assert_eq!(
        timer_slot(epoch, now, ms(349), false),
        ms(360),
        "just under coarse"
    );
    assert_eq!(
        timer_slot(epoch, now, ms(350), false),
        ms(400),
        "far: coarse grid"
    );
    assert_eq!(timer_slot(epoch, now, ms(1_101), false), ms(1_200));
    assert_eq!(timer_slot(epoch, now, ms(1_200), false), ms(1_200));
}

#[test]
fn a_quiet_shard_serves_every_deadline_on_its_poll_grid() {
    let epoch = clock::mono();
    let ms = |n| epoch + Duration::from_millis(n);
    let now = ms(130);
    assert_eq!(
        timer_slot(epoch, now, ms(131), true),
        ms(250),
        "urgent waits too"
    );
    assert_eq!(
        timer_slot(epoch, now, ms(90), true),
        ms(250),
        "overdue: next slot"
    );
    assert_eq!(timer_slot(epoch, now, ms(155), true), ms(250));
    assert_eq!(timer_slot(epoch, now, ms(250), true), ms(250));
    assert_eq!(timer_slot(epoch, now, ms(1_101), true), ms(1_250));
    for n in [131, 90, 777, 1_101, 9_999] {
        let slot = timer_slot(epoch, now, ms(n), true);
        assert_eq!(
            slot,
            quiet::grid_ceil(epoch, slot, quiet::QUIET_POLL),
            "a quiet timer wakes with the receivers' polls"
        );
    }
}

#[test]
fn stats_reports_fall_on_the_quiet_grid() {
    let epoch = clock::mono();
    let ms = |n| epoch + Duration::from_millis(n);
    assert_eq!(quiet::next_slot(epoch, ms(0), STATS_EVERY), ms(1_000));
    assert_eq!(quiet::next_slot(epoch, ms(999), STATS_EVERY), ms(1_000));
    assert_eq!(quiet::next_slot(epoch, ms(1_000), STATS_EVERY), ms(2_000));
    let at = quiet::next_slot(epoch, ms(1_337), STATS_EVERY);
    assert_eq!(at, quiet::grid_ceil(epoch, at, quiet::QUIET_POLL));
}
