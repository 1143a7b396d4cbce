"""The demo's halls as their managers would set them up: 市民之家 with five windows, 岳麓区 with two."""

from __future__ import annotations

from datetime import time

from domain.booking import BookingRules, GeoPoint, HallConfig, ItemGroup, Session, Window

_SMZJ_GROUPS = (
    ItemGroup(
        code="A",
        name="市场准入",
        prefix="A",
        items=(
            "11430100006182474N010100100000",  # 企业设立登记
            "11430100006182474N010100200000",  # 个体工商户设立登记
            "11430100006182474N010100300000",  # 食品经营许可
        ),
    ),
    ItemGroup(
        code="B",
        name="社保医保",
        prefix="B",
        items=(
            "114301000061839447200400500000",  # 社会保障卡申领
            "11430100MB1D48251H200500100000",  # 城乡居民基本医疗保险参保登记
            "11430100MB1D48251H200500200000",  # 跨省异地就医备案
        ),
    ),
    ItemGroup(
        code="C",
        name="户政证件",
        prefix="C",
        items=(
            "11430100006180524Q200200200000",  # 居民身份证换领
            "11430100006180524Q070200400000",  # 出生登记
        ),
    ),
)
# Morning and afternoon, with the 12:00–13:30 break; a 30-minute slot seats one visitor per window.
_HOURS = (Session(start=time(9), end=time(12)), Session(start=time(13, 30), end=time(17)))

DEMO_HALLS: dict[str, HallConfig] = {
    "SMZJ": HallConfig(
        name="长沙市政务服务中心（市民之家）",
        kind="市民之家",
        address="长沙市岳麓区金星中路428号",
        windows=(
            Window(code="01", groups=("A",)),
            Window(code="02", groups=("A",)),
            Window(code="03", groups=("B",)),
            Window(code="04", groups=("B", "C")),
            Window(code="05", groups=("C",)),
        ),
        groups=_SMZJ_GROUPS,
        sessions=_HOURS,
        rules=BookingRules(),
        location=GeoPoint(lat=28.2282, lon=112.9388),
    ),
    "YLQ": HallConfig(
        name="岳麓区政务服务中心",
        kind="行政服务中心",
        address="长沙市岳麓区桐梓坡路",
        windows=(Window(code="01", groups=("A", "B")), Window(code="02", groups=("B",))),
        groups=_SMZJ_GROUPS[:2],
        sessions=_HOURS,
        location=GeoPoint(lat=28.2351, lon=112.9008),
    ),
}
