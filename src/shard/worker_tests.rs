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
fn a_quiet_shard_serves_every_deadline_on_the_coarse_grid() {
    let epoch = clock::mono();
    let ms = |n| epoch + Duration::from_millis(n);
    let now = ms(130);
    assert_eq!(
        timer_slot(epoch, now, ms(131), true),
        ms(200),
        "urgent waits too"
    );
    assert_eq!(
        timer_slot(epoch, now, ms(90), true),
        ms(200),
        "overdue: next slot"
    );
    assert_eq!(timer_slot(epoch, now, ms(155), true), ms(200));
    assert_eq!(timer_slot(epoch, now, ms(200), true), ms(200));
    assert_eq!(timer_slot(epoch, now, ms(1_101), true), ms(1_200));
}
