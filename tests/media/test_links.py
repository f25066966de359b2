"""The layer selection rules (media/links.py), without I/O: what a subscriber gets on a given link."""

from media.links import (
    BACKOFF_MIN,
    HIGH,
    LOW,
    OFF,
    LinkControl,
    LinkReport,
    VideoSlot,
    allocate,
)

AUDIO = 48_000
SCREEN = VideoSlot("screen", high=1_500_000, low=60_000)
CAMERA = VideoSlot("teacher_camera", high=1_000_000, low=150_000)
CLASSMATE = VideoSlot("grid_1", high=300_000, low=None)  # a student's camera: one modest layer
SLOTS = [SCREEN, CAMERA, CLASSMATE]


def test_no_budget_means_every_high_layer():
    assert allocate(None, AUDIO, SLOTS) == {"screen": HIGH, "teacher_camera": HIGH, "grid_1": HIGH}


def test_a_300_kbit_link_gets_the_low_layers_and_audio_first():
    choice = allocate(270_000, AUDIO, SLOTS)
    assert choice == {"screen": LOW, "teacher_camera": LOW, "grid_1": OFF}


def test_when_even_low_layers_do_not_fit_video_pauses_from_the_least_important():
    assert allocate(170_000, AUDIO, SLOTS) == {"screen": LOW, "teacher_camera": OFF, "grid_1": OFF}
    assert allocate(60_000, AUDIO, SLOTS) == {"screen": OFF, "teacher_camera": OFF, "grid_1": OFF}


def test_every_slot_gets_its_cheapest_layer_before_what_is_left_upgrades_in_priority_order():
    choice = allocate(AUDIO + 60_000 + 150_000 + 300_000 + 850_000 + 10_000, AUDIO, SLOTS)
    assert choice == {"screen": LOW, "teacher_camera": HIGH, "grid_1": HIGH}


def test_data_saver_takes_low_layers_whatever_the_link():
    assert allocate(None, AUDIO, SLOTS, low_only=True) == {"screen": LOW, "teacher_camera": LOW, "grid_1": HIGH}


def _tick(control: LinkControl, now: float, loss: float, sent: float = 2_500_000) -> None:
    packets = 200
    control.update(now, LinkReport(lost=round(packets * loss), expected=packets, sent_bitrate=sent), AUDIO, SLOTS)


def test_heavy_loss_sets_a_budget_from_what_got_through():
    control = LinkControl()
    _tick(control, 1, 0.0)
    assert control.budget is None
    _tick(control, 2, 0.75)  # 2.5 Mbit/s sent, a quarter arrived
    assert control.budget is not None and control.budget < 2_500_000 * 0.25
    assert allocate(control.budget, AUDIO, SLOTS)["teacher_camera"] == LOW


def test_steady_random_loss_of_a_mobile_link_neither_downgrades_nor_tries_upgrades():
    control = LinkControl()
    _tick(control, 1, 0.75)
    budget = control.budget
    for second in range(2, 40):
        _tick(control, second, 0.05, sent=250_000)
    assert control.budget == budget


def test_a_recovered_link_climbs_back_within_a_few_tries():
    control = LinkControl()
    _tick(control, 0, 0.75)
    now, tries = 1.0, 0
    while allocate(control.budget, AUDIO, SLOTS) != {"screen": HIGH, "teacher_camera": HIGH, "grid_1": HIGH}:
        before = control.budget
        _tick(control, now, 0.0)
        tries += control.budget != before
        now += 1
        assert now < 30, "never back on the high layers"
    assert tries <= len(SLOTS) * 2


def test_a_failed_try_doubles_the_wait_before_the_next():
    control = LinkControl()
    _tick(control, 0, 0.75, sent=2_500_000)
    now = 1.0
    while control.last_upgrade is None:
        _tick(control, now, 0.0, sent=250_000)
        now += 1
    _tick(control, now, 0.5, sent=1_200_000)  # the try overflowed the link
    assert control.backoff == 2 * BACKOFF_MIN
    assert control.last_upgrade is None and control.clean_ticks == 0


def test_from_the_low_layers_one_bad_tick_does_not_pause_video_two_do():
    control = LinkControl()
    _tick(control, 0, 0.75)  # high -> the low layers' rung
    rung = control.budget
    _tick(control, 10, 0.30, sent=250_000)  # after the hold: one congested tick
    assert control.budget == rung
    _tick(control, 11, 0.30, sent=250_000)  # a second one in a row: the video that does not fit pauses
    assert control.budget < rung


def test_a_lossy_link_whose_losses_are_repaired_is_not_clean():
    """A browser counts a packet repaired by a retransmission as received: its reports of a 5 % link can
    show no loss while the server resends 5 % of the packets. No try to the high layers then."""
    control = LinkControl()
    _tick(control, 0, 0.75)
    rung = control.budget
    for second in range(10, 40):
        control.update(
            second, LinkReport(lost=0, expected=90, sent_bitrate=250_000, sent_packets=90, resent=5), AUDIO, SLOTS
        )
    assert control.budget == rung
