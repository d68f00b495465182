"""The profile goes into the variable the installed Fast DDS reads; a team's own profile wins."""

from __future__ import annotations

from crop_weed_seg.ros.dds_profile import (
    FAST_DDS_2,
    FAST_DDS_3,
    PROFILE_VARIABLES,
    installed_fast_dds_major,
    profile_overrides,
    profile_variables,
    set_default_profile,
)


def test_the_distribution_decides_when_ros_is_sourced() -> None:
    for distro in ("humble", "jazzy", "Jazzy"):
        assert profile_variables({"ROS_DISTRO": distro}) == (FAST_DDS_2,)
    for distro in ("kilted", "rolling"):
        assert profile_variables({"ROS_DISTRO": distro}) == (FAST_DDS_3,)


def test_else_the_installed_wheel_decides_and_both_when_unknown() -> None:
    assert profile_variables({}, major=2) == (FAST_DDS_2,)
    assert profile_variables({}, major=3) == (FAST_DDS_3,)
    assert set(profile_variables({}, major=None)) == {FAST_DDS_2, FAST_DDS_3} or \
        installed_fast_dds_major() is not None


def test_this_environment_is_recognised() -> None:
    # the Kilted wheels here carry Fast DDS 3.x; the Jazzy wheels 2.x
    major = installed_fast_dds_major()
    assert major in (2, 3)
    assert profile_variables({}) == ((FAST_DDS_2,) if major == 2 else (FAST_DDS_3,))


def test_a_profile_already_named_wins_whichever_variable_names_it() -> None:
    for name in PROFILE_VARIABLES:
        env = {name: "/team.xml"}
        assert not set_default_profile(env, "/p.xml")
        assert env == {name: "/team.xml"}
    env = {"ROS_DISTRO": "jazzy"}
    assert set_default_profile(env, "/p.xml")
    assert env == {"ROS_DISTRO": "jazzy", FAST_DDS_2: "/p.xml"}


def test_overrides_set_one_and_remove_the_other() -> None:
    assert profile_overrides("/p.xml", {"ROS_DISTRO": "kilted"}) == {FAST_DDS_3: "/p.xml",
                                                                     FAST_DDS_2: None}
    assert profile_overrides("/p.xml", {"ROS_DISTRO": "humble"}) == {FAST_DDS_3: None,
                                                                     FAST_DDS_2: "/p.xml"}
    assert profile_overrides(None) == dict.fromkeys(PROFILE_VARIABLES, None)
