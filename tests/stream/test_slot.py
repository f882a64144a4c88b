"""The one latest-frame-wins rule, shared by the push source, the stream and the server."""
from usedge.stream.slot import LatestSlot


def test_newest_wins_and_replaced_items_are_counted():
    slot = LatestSlot()
    assert slot.empty and slot.take() is None
    assert slot.put(1) is False and slot.put(2) is True and slot.put(3) is True
    assert slot.dropped == 2 and slot.take() == 3 and slot.empty
    assert slot.put(4) is False and slot.dropped == 2          # nothing was waiting
