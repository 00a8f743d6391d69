"""Vectorized string helpers (numpy StringDType) and the name/word pools."""

from __future__ import annotations

from functools import reduce
from typing import Any

import numpy as np

S = np.dtypes.StringDType()
Arr = np.ndarray[Any, Any]


def sarr(values: Any) -> Arr:
    return np.asarray(values, dtype=S)


def cat(*parts: Any) -> Arr:
    """Element-wise concatenation; scalars broadcast."""
    conv = [p if isinstance(p, str) else np.asarray(p, dtype=S) for p in parts]
    return reduce(np.strings.add, conv)  # type: ignore[arg-type]


def num(a: Any, width: int = 0) -> Arr:
    """Integers as strings, zero-padded to width."""
    s = np.asarray(a, dtype=np.int64).astype(S)
    return np.strings.zfill(s, width) if width else s


def ascii_rows(codes: Arr) -> Arr:
    """(N, k) uint8 ASCII codes -> N strings of length k."""
    k = codes.shape[1]
    return np.ascontiguousarray(codes, dtype=np.uint8).view(f"S{k}").ravel().astype(S)


# Surname frequencies (per cent, approximate national shares); compound surnames are rare.
SURNAMES = (
    "王7.25 李7.19 张6.83 刘5.38 陈4.53 杨3.08 黄2.23 赵2.11 吴2.05 周1.91 徐1.67 孙1.54 马1.45 朱1.38 "
    "胡1.31 郭1.15 何1.06 高1.00 林0.99 罗0.93 郑0.87 梁0.83 谢0.73 宋0.63 唐0.61 许0.60 韩0.56 冯0.55 "
    "邓0.55 曹0.53 彭0.52 曾0.50 肖0.49 田0.49 董0.47 袁0.46 潘0.45 于0.44 蒋0.43 蔡0.42 余0.41 杜0.40 "
    "叶0.39 程0.38 苏0.37 魏0.36 吕0.35 丁0.34 任0.33 沈0.32 姚0.31 卢0.30 姜0.29 崔0.28 钟0.27 谭0.26 "
    "陆0.25 汪0.24 范0.23 金0.22 石0.21 廖0.20 贾0.19 夏0.18 韦0.17 付0.16 方0.16 白0.15 邹0.15 孟0.14 "
    "熊0.14 秦0.13 邱0.13 江0.13 尹0.12 薛0.12 闫0.11 段0.11 雷0.11 侯0.10 龙0.10 史0.10 陶0.09 黎0.09 "
    "贺0.09 顾0.09 毛0.08 郝0.08 龚0.08 邵0.08 万0.07 钱0.07 严0.07 覃0.07 武0.07 戴0.07 莫0.06 孔0.06 "
    "向0.06 汤0.06 欧阳0.03 司马0.01 上官0.01 诸葛0.01 东方0.005 皇甫0.005 令狐0.005 慕容0.005"
)

# Given-name characters, each with a homophone or traditional form used for name_variant.
GIVEN_PAIRS = (
    "伟偉 芳方 娜纳 敏民 静靜 丽麗 强強 磊垒 军軍 洋阳 勇永 艳艷 杰傑 娟鹃 涛濤 明铭 超朝 秀琇 霞侠 平萍 "
    "刚剛 桂贵 英瑛 华華 玉钰 兰蘭 红紅 建健 国國 文雯 辉輝 斌彬 宇雨 浩皓 凯凱 婷亭 欣昕 鹏鵬 飞飛 波博 "
    "志智 峰锋 林琳 晨辰 佳嘉 俊骏 梅玫 云雲 春椿 亮靓 成城 东東 玲铃 颖穎 慧惠 莉俐 龙龍 燕雁 倩茜 萍苹 "
    "宁寧 晶菁 雷蕾 鑫新 轩萱 涵含 梓子 睿瑞 子紫 怡宜 悦越 思斯 雨语 泽则 博柏 宏弘 振震 金锦 荣榮 发發 "
    "福富 贵桂 海凯 军君 小晓 晓小 丹单 琴勤 凤鳳 兵斌 德得 永勇 昊浩 嘉佳 瑶遥 诗师 雅亚 梦孟 欢歡"
)

STREETS = [
    "人民",
    "解放",
    "中山",
    "建设",
    "和平",
    "胜利",
    "新华",
    "文化",
    "光明",
    "朝阳",
    "东风",
    "青年",
    "幸福",
    "友谊",
    "团结",
    "长江",
    "黄河",
    "民主",
    "育才",
    "府前",
    "滨河",
    "迎宾",
    "工业",
    "学府",
    "体育",
    "花园",
    "金融",
    "科技",
    "创业",
    "世纪",
    "南京",
    "北京",
    "上海",
    "广州",
    "沿江",
    "环城",
    "站前",
    "春风",
    "五一",
    "八一",
]
STREET_SUFFIX = ["路", "路", "路", "街", "大道", "大街", "巷"]

TRADE_CHARS = list(
    "华信恒泰宏盛鑫源通达昌隆兴旺嘉禾中天金辉瑞丰永安博远新宇联创汇鼎佳和明德正诚宏图凯越天成启航"
    "卓越精诚东方海纳云帆锦绣万家百川长青益民康泰聚力合众远景祥和晨光腾飞"
)

INDUSTRY_WORDS: dict[str, list[str]] = {
    "A": ["农业科技", "种植", "养殖", "农业开发"],
    "B": ["矿业", "石材开采"],
    "C": ["机械制造", "电子", "食品", "纺织", "新材料", "塑料制品", "医疗器械"],
    "D": ["能源", "热力", "燃气"],
    "E": ["建筑工程", "建设", "装饰工程", "市政工程"],
    "F": ["商贸", "贸易", "百货", "医药连锁", "建材"],
    "G": ["物流", "运输", "货运代理"],
    "H": ["餐饮管理", "酒店管理", "餐饮"],
    "I": ["科技", "信息技术", "网络科技", "软件", "数据服务"],
    "J": ["投资管理", "融资担保", "小额贷款"],
    "K": ["房地产开发", "置业", "物业管理"],
    "L": ["商务咨询", "企业管理", "广告", "人力资源"],
    "M": ["技术服务", "检测", "工程设计", "生物科技"],
    "N": ["环保科技", "园林绿化", "环境工程"],
    "O": ["家政服务", "汽车维修", "美容美发"],
    "P": ["教育科技", "培训"],
    "Q": ["健康管理", "医疗管理", "养老服务"],
    "R": ["文化传媒", "体育发展", "影视"],
    "S": ["社区服务"],
    "T": ["国际交流"],
}
# GB/T 4754 section shares among registered organisations (rough).
INDUSTRY_WEIGHTS = {
    "A": 3,
    "B": 0.5,
    "C": 12,
    "D": 0.8,
    "E": 7,
    "F": 30,
    "G": 4,
    "H": 7,
    "I": 6,
    "J": 1.5,
    "K": 2,
    "L": 10,
    "M": 5,
    "N": 1,
    "O": 5,
    "P": 1.5,
    "Q": 1,
    "R": 2,
    "S": 0.5,
    "T": 0.01,
}
SHOP_WORDS = ["便利店", "超市", "餐馆", "五金店", "理发店", "汽修部", "服装店", "水果店", "经营部", "小吃店"]
INSTITUTION_WORDS = [
    "第一中学",
    "第二中学",
    "实验小学",
    "人民医院",
    "中医医院",
    "图书馆",
    "文化馆",
    "疾病预防控制中心",
]
SOCIETY_WORDS = ["行业协会", "商会", "促进会", "志愿者协会", "慈善基金会"]

PHONE_PREFIXES = [
    130,
    131,
    132,
    133,
    134,
    135,
    136,
    137,
    138,
    139,
    150,
    151,
    152,
    153,
    155,
    156,
    157,
    158,
    159,
    170,
    173,
    175,
    176,
    177,
    178,
    180,
    181,
    182,
    183,
    184,
    185,
    186,
    187,
    188,
    189,
    191,
    193,
    195,
    198,
    199,
]

FULLWIDTH = str.maketrans(
    "0123456789XABCDEFGHJKLMNPQRTUWY", "０１２３４５６７８９ＸＡＢＣＤＥＦＧＨＪＫＬＭＮＰＱＲＴＵＷＹ"
)


def surnames() -> tuple[list[str], np.ndarray]:
    names, weights = [], []
    for tok in SURNAMES.split():
        i = next(k for k, ch in enumerate(tok) if ch.isdigit())
        names.append(tok[:i])
        weights.append(float(tok[i:]))
    w = np.asarray(weights)
    return names, w / w.sum()


def given_pairs() -> tuple[list[str], list[str]]:
    pairs = GIVEN_PAIRS.split()
    return [p[0] for p in pairs], [p[1] for p in pairs]


# Surnames and the homophone or look-alike a clerk writes instead (肖/萧, 闫/阎, 付/傅 are
# also official variants people use interchangeably).
def _pairs(text: str) -> dict[str, str]:
    return {p[0]: p[1] for p in text.split()}


def _words(text: str) -> list[str]:
    return text.split()


SURNAME_VARIANTS = _pairs(
    "张章 王汪 李黎 刘柳 陈程 杨扬 黄皇 徐许 周州 吴伍 胡湖 郭国 何和 高郜 林霖 罗骆 郑正 梁粱 "
    "谢解 唐汤 韩寒 冯凤 曾增 肖萧 董懂 袁元 于余 蒋姜 余于 程陈 魏卫 任仁 沈申 姚尧 卢芦 姜蒋 "
    "钟仲 谭覃 陆路 汪王 范樊 金靳 石史 付傅 方芳 白柏 孟梦 熊雄 邱丘 江姜 尹殷 薛雪 闫阎 雷蕾 "
    "侯候 龙隆 史石 陶桃 贺何 顾古 毛茅 郝赫 龚宫 邵召 严颜 覃谭 武吴 戴代 莫墨 向项 汤唐"
)

# Given-name characters and a homophone or look-alike clerks confuse them with (晶/精, 玲/琳).
LOOKALIKE_GIVEN = _pairs(
    "晶精 玲琳 琳玲 精晶 婷亭 燕艳 艳燕 丽莉 莉丽 娟鹃 静净 敏闽 峰锋 锋峰 斌彬 彬斌 杰洁 洁杰 "
    "辉晖 晖辉 军均 俊骏 浩皓 皓浩 宇羽 雨宇 欣昕 昕欣 佳嘉 嘉佳 颖英 英颖 萍苹 红宏 宏红 "
    "华骅 明鸣 鹏朋 刚钢 超朝 勇涌 强墙 伟玮 玮伟 芳方 秀绣 霞侠 梅枚 兰岚 岚兰 倩茜 茜倩"
)

#: Most frequent full names (national statistics): namesakes are drawn from these.
COMMON_NAMES = _words(
    "张伟 王伟 王芳 李伟 李娜 张敏 李静 王静 刘伟 王秀英 张丽 李秀英 王丽 张静 张秀英 李强 王敏 "
    "李敏 王磊 刘洋 王艳 王勇 李军 张勇 李杰 张杰 张磊 王强 李娟 王军 张艳 张涛 王涛 李明 李艳"
)

# Transliterated Uyghur and Kazakh names: given name, then the father's name, joined with
# the middle dot "·" in the household register (阿卜杜拉·买买提).
MINORITY_GIVEN = _words(
    "阿卜杜拉 艾合买提 买买提 吐尔逊 艾力 依明 阿不都 努尔 热合曼 伊力哈木 阿迪力 艾山 卡德尔 "
    "阿依古丽 古丽娜尔 热依拉 帕提古丽 迪丽努尔 阿娜尔 海热古丽 米娜瓦尔 努尔古丽 阿斯哈尔 叶尔兰"
)
MINORITY_FATHER = _words(
    "买买提 吐尔逊 艾力 阿不都 依明 肉孜 司马义 克里木 热合曼 阿布拉 努尔 玉素甫 托合提 哈力克"
)
#: GB/T 3304 codes whose names are written given·father: 维吾尔族, 哈萨克族.
SEPARATOR_NAME_GROUPS = ("05", "17")


def traditional(names: list[str]) -> list[str]:
    """The names in traditional characters (OpenCC s2t), converted in one call."""
    import opencc

    if not names:
        return []
    return str(opencc.OpenCC("s2t").convert("\n".join(names))).split("\n")
