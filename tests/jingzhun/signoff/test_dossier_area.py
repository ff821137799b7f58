"""The workbench's household dossier stays in the reader's area (the intruder review's F3): a family whose numbers
lead into a household of another village shows only what lies in the reader's own."""

import pandas as pd

from jingzhun import warehouse
from jingzhun.dossier import household_view
from jingzhun.policy import Policy
from jingzhun.signoff.access import Actor
from jingzhun.signoff.stages import Role

from helpers import nightly_publish


def test_a_family_spanning_two_villages_is_read_village_by_village(frames, warehouse_url):
    register, hukou = frames["poverty_register"].copy(), frames["hukou"].copy()
    here = register.iloc[0]
    there = register[register["village_code"].ne(here["village_code"])].iloc[0]
    mover = register[register["household_id"].eq(there["household_id"])]["id_number"].iloc[0]
    home = hukou.loc[hukou["id_number"].eq(here["id_number"]), "hukou_household_id"].iloc[0]
    hukou.loc[hukou["id_number"].eq(mover), "hukou_household_id"] = home   # one of "there" moved into "here"'s hukou
    nightly_publish(warehouse_url, "r1", {**frames, "poverty_register": register, "hukou": hukou})
    engine = warehouse.connect(warehouse_url)
    reader = Actor(1, "村干部", Role.village, here["village_code"])
    seen = household_view(engine, reader, here["household_id"], Policy(), full=True)
    shown = pd.DataFrame(seen["members"]) if not isinstance(seen["members"], pd.DataFrame) else seen["members"]
    others = set(register.loc[register["household_id"].eq(there["household_id"]), "id_number"]) - {mover}
    assert not others & set(shown["id_number"])            # the other village's household stays unseen
    assert there["household_id"] not in set(seen.get("household_ids", []))
    assert here["id_number"] in set(shown["id_number"])


def test_the_lookup_reads_a_number_as_people_type_it_and_stays_in_the_area(frames, warehouse_url):
    """#28: a lower-case x, spaces, full-width digits and the 15-digit form find the family as staging reads the same
    number in a department's file; a household number is found as typed; outside the area nothing is found."""
    import pytest

    from jingzhun.dossier import find_household
    from jingzhun.normalise import normalise_ids
    from jingzhun.signoff.access import Unknown

    register = frames["poverty_register"]
    ids = normalise_ids(register["id_number"])
    member = register[ids["id_valid"] & ids["id_number"].str.endswith("X")].iloc[0] if \
        (ids["id_valid"] & ids["id_number"].str.endswith("X")).any() else register[ids["id_valid"]].iloc[0]
    number = normalise_ids(pd.Series([member["id_number"]]))["id_number"].iloc[0]
    nightly_publish(warehouse_url, "r1", frames)
    engine = warehouse.connect(warehouse_url)
    reader = Actor(1, "村干部", Role.village, member["village_code"])
    wide = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")
    for typed in (number.lower(), f" {number[:6]} {number[6:14]} {number[14:]} ", number.translate(wide),
                  member["household_id"]):
        assert find_household(engine, reader, typed) == member["household_id"], typed
    if number[6:8] == "19":                                   # the 15-digit form of a 20th-century birth
        assert find_household(engine, reader, number[:6] + number[8:17]) == member["household_id"]
    stranger = Actor(2, "外村", Role.village, member["village_code"][:-1] + ("1" if member["village_code"][-1] != "1" else "2"))
    with pytest.raises(Unknown):
        find_household(engine, stranger, number.lower())
