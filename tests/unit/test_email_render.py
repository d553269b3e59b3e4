# ruff: noqa: RUF001 -- Chinese text uses full-width punctuation on purpose
"""E-mail templates (`notifications.email.render`) and the MIME message built from them (`build_message`).

Every kind renders in every language from contexts made the way the service makes them: partner kinds from
the partner event's `model_dump()`, the others from the facts the notifications service holds.
"""

import email
import email.policy
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from email.message import EmailMessage
from html.parser import HTMLParser
from typing import Any

import jinja2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from goglobal_contract.enums import BudgetBand, DeclineReason, Outcome, ServiceCategory, Urgency
from goglobal_contract.events import ContactDetails, OfferWithdrawalReason
from goglobal_contract.markets import REGIONS
from goglobal_contract.notification_events import EndpointDisabled
from goglobal_contract.partner_events import (
    EnterpriseIdentity,
    EnterpriseProfileSummary,
    NeedSummary,
    OfferExpiredForPartner,
    OfferWithdrawnFromPartner,
    ReferralAcceptedByPartner,
    ReferralClosedByOperator,
    ReferralOfferedToPartner,
    ReferralRatedByEnterprise,
    ReferralWithdrawnByEnterprise,
)
from goglobal_contract.sectors import SECTORS
from intake.domain.inputs.enterprise import SizeBand
from notifications.email import (
    SUPPORTED,
    RenderedEmail,
    SmtpConfig,
    UnknownTemplate,
    build_message,
    choose_language,
    kinds,
    render,
)
from notifications.email.render import TEMPLATES, environment

RID = "0000018f2a0b3c4d5e6f708192a3b4c5"
REQUEST_ID = "0000018f2a0b3c4d5e6f7081request1"
OFFERED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
RESPOND_BY = datetime(2026, 3, 4, 9, 30, tzinfo=UTC)
RESPOND_BY_TEXT = "2026-03-04 09:30 UTC"
LATER = datetime(2026, 3, 6, 2, 15, tzinfo=UTC)
PORTAL = "https://portal.goglobal.hk"
PARTNER = "wong-partners"  # the partner each partner event is for
SCRIPT = "<script>alert('x')</script>"
DESCRIPTION = f"Set up a trading subsidiary in Dubai and a branch in Riyadh. {SCRIPT}"

PARTNER_KINDS = {
    "referral_offered",
    "offer_withdrawn",
    "offer_expired",
    "referral_accepted",
    "referral_withdrawn",
    "referral_closed",
    "referral_rated",
    "endpoint_disabled",
}
ENTERPRISE_KINDS = {
    "request_received",
    "referral_offered_enterprise",
    "referral_accepted_enterprise",
    "referral_unmatched_enterprise",
    "referral_completed_enterprise",
}
OPERATOR_KINDS = {"endpoint_disabled_operators"}

NEED = NeedSummary(
    service_category=ServiceCategory.LEGAL,
    target_markets=["AE", "SA"],
    description=DESCRIPTION,
    urgency=Urgency.HIGH,
    budget_band=BudgetBand.FROM_50K_TO_200K_USD,
    languages=["zh-Hans", "en"],
)
CONTACT = ContactDetails(name="Li Wei", email="li.wei@brightsolar.example.cn", phone="+8613812345678")
ENTERPRISE = EnterpriseIdentity(
    enterprise_id="0000018f2a0b3c4d5e6f70enterprise",
    legal_name_zh="深圳明日光伏科技有限公司",
    legal_name_en="Shenzhen Bright Solar Technology Co., Ltd.",
    hq_province="Guangdong",
    hq_city="Shenzhen",
    contact=CONTACT,
)


def payloads() -> dict[str, dict[str, Any]]:
    """The facts of each kind, as the notifications service has them."""
    return {
        "referral_offered": ReferralOfferedToPartner(
            partner_id=PARTNER,
            referral_id=RID,
            need=NEED,
            enterprise=EnterpriseProfileSummary(
                sector="C27", size_band="medium", hq_province="Guangdong", preferred_languages=["zh-Hans", "en"]
            ),
            offered_at=OFFERED,
            respond_by=RESPOND_BY,
            round=1,
        ).model_dump(),
        "offer_withdrawn": OfferWithdrawnFromPartner(
            partner_id=PARTNER, referral_id=RID, reason=OfferWithdrawalReason.ACCEPTED_ELSEWHERE, withdrawn_at=LATER
        ).model_dump(),
        "offer_expired": OfferExpiredForPartner(
            partner_id=PARTNER, referral_id=RID, offered_at=OFFERED, expired_at=RESPOND_BY
        ).model_dump(),
        "referral_accepted": ReferralAcceptedByPartner(
            partner_id=PARTNER, referral_id=RID, accepted_at=LATER, enterprise=ENTERPRISE
        ).model_dump(),
        "referral_withdrawn": ReferralWithdrawnByEnterprise(
            partner_id=PARTNER, referral_id=RID, withdrawn_at=LATER
        ).model_dump(),
        "referral_closed": ReferralClosedByOperator(
            partner_id=PARTNER, referral_id=RID, reason=f"Duplicate of another referral {SCRIPT}", closed_at=LATER
        ).model_dump(),
        "referral_rated": ReferralRatedByEnterprise(
            partner_id=PARTNER, referral_id=RID, score=4, comment=f"Quick & thorough {SCRIPT}", rated_at=LATER
        ).model_dump(),
        "endpoint_disabled": EndpointDisabled(
            partner_id=PARTNER,
            url="https://hooks.wongpartners.example.hk/goglobal",
            reason="no successful delivery for 5 days (last: HTTP 503)",
            disabled_at=LATER,
        ).model_dump(),
        "endpoint_disabled_operators": {
            **EndpointDisabled(
                partner_id="wong-partners",
                url="https://hooks.wongpartners.example.hk/goglobal",
                reason="HTTP 410 Gone",
                disabled_at=LATER,
            ).model_dump(),
            "partner_name": "Wong & Partners Solicitors",
        },
        "request_received": {
            "request_id": REQUEST_ID,
            "received_at": OFFERED,
            "needs": [
                {**NEED.model_dump(), "referral_id": RID},
                {
                    "service_category": ServiceCategory.BANKING_AND_FUND_MANAGEMENT,
                    "target_markets": ["MIDDLE_EAST"],
                    "description": "Open USD and AED corporate accounts.",
                    "urgency": Urgency.NORMAL,
                    "budget_band": BudgetBand.UNDISCLOSED,
                    "languages": [],
                },
            ],
        },
        "referral_offered_enterprise": {
            "referral_id": RID,
            "service_category": ServiceCategory.LEGAL,
            "offered_at": OFFERED,
            "respond_by": RESPOND_BY,
        },
        "referral_accepted_enterprise": {
            "referral_id": RID,
            "service_category": ServiceCategory.LEGAL,
            "partner_name": "Wong & Partners Solicitors",
            "accepted_at": LATER,
            "contact_shared": True,
        },
        "referral_unmatched_enterprise": {
            "referral_id": RID,
            "service_category": ServiceCategory.TAX,
            "unmatched_at": LATER,
        },
        "referral_completed_enterprise": {
            "referral_id": RID,
            "service_category": ServiceCategory.LEGAL,
            "partner_name": "Wong & Partners Solicitors",
            "outcome": Outcome.ENGAGED,
            "notes": f"Engagement letter signed on 3 March. {SCRIPT}",
            "completed_at": LATER,
        },
    }


def context(kind: str, **changes: Any) -> dict[str, Any]:
    return {"portal_url": PORTAL, **payloads()[kind], **changes}


def labels(language: str) -> Any:
    return environment().get_template(f"{language}/_labels.jinja").module


# --- the template set -------------------------------------------------------------------------------------


def test_kinds_are_the_known_ones() -> None:
    assert set(kinds()) == PARTNER_KINDS | ENTERPRISE_KINDS | OPERATOR_KINDS
    assert kinds() == sorted(kinds())


@pytest.mark.parametrize("language", SUPPORTED)
def test_every_kind_has_its_three_templates_in_the_package(language: str) -> None:
    # Next to render.py, inside the package directory: uv_build ships everything under the module.
    assert TEMPLATES.parent.name == "email" and TEMPLATES.parent.parent.name == "notifications"
    for kind in kinds():
        for suffix in (".subject.txt", ".txt", ".html"):
            assert (TEMPLATES / language / f"{kind}{suffix}").is_file(), f"{language}/{kind}{suffix}"
    for shared in ("base.txt", "base.html", "_labels.jinja", "_blocks.txt", "_blocks.html"):
        assert (TEMPLATES / language / shared).is_file()


@pytest.mark.parametrize("language", SUPPORTED)
def test_every_code_has_a_name_in_every_language(language: str) -> None:
    vocabulary = labels(language)
    for table, codes in (
        ("CATEGORIES", ServiceCategory),
        ("URGENCY", Urgency),
        ("BUDGETS", BudgetBand),
        ("SIZES", SizeBand),
        ("WITHDRAWALS", OfferWithdrawalReason),
        ("DECLINES", DeclineReason),
        ("OUTCOMES", Outcome),
    ):
        names = getattr(vocabulary, table)
        assert set(names) == {code.value for code in codes}, table
        assert all(names.values()), table
    assert set(vocabulary.SECTORS) == set(SECTORS)
    assert set(REGIONS) <= set(vocabulary.MARKETS)
    assert all(country in vocabulary.MARKETS for members in REGIONS.values() for country in members)


@pytest.mark.parametrize("table", ["CATEGORIES", "BUDGETS", "WITHDRAWALS", "OUTCOMES", "MARKETS", "PROVINCES"])
def test_the_three_vocabularies_say_the_same_things_differently(table: str) -> None:
    en, hans, hant = (getattr(labels(language), table) for language in SUPPORTED)
    assert set(en) == set(hans) == set(hant)
    assert en != hans
    assert hans != hant


# --- rendering ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("language", SUPPORTED)
@pytest.mark.parametrize("kind", sorted(PARTNER_KINDS | ENTERPRISE_KINDS | OPERATOR_KINDS))
def test_every_kind_renders_in_every_language(kind: str, language: str) -> None:
    mail = render(kind, language, context(kind))

    assert isinstance(mail, RenderedEmail)
    assert mail.subject and mail.subject == mail.subject.strip()
    assert "\n" not in mail.subject and "\r" not in mail.subject
    assert mail.text.strip() and mail.text.endswith("\n")
    assert mail.html.startswith("<!DOCTYPE html>")
    assert f'<html lang="{language}' in mail.html
    for part in (mail.subject, mail.text, mail.html):
        assert "None" not in part
        # Codes are shown by their names, never raw.
        for code in ("from_50k_to_200k_usd", "accepted_elsewhere", "banking_and_fund_management", "MIDDLE_EAST"):
            assert code not in part
    assert PORTAL in mail.text
    if "referral_id" in payloads()[kind]:
        assert RID in mail.text
        assert RID in mail.html


class _TagBalance(HTMLParser):
    VOID = frozenset({"meta", "br", "img", "hr", "link", "input"})

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open.pop() != tag:
            self.errors.append(f"unexpected </{tag}>")


@pytest.mark.parametrize("language", SUPPORTED)
@pytest.mark.parametrize("kind", sorted(PARTNER_KINDS | ENTERPRISE_KINDS | OPERATOR_KINDS))
def test_html_tags_are_balanced(kind: str, language: str) -> None:
    parser = _TagBalance()
    parser.feed(render(kind, language, context(kind)).html)
    parser.close()

    assert parser.errors == [] and parser.open == []


@pytest.mark.parametrize("language", SUPPORTED)
def test_the_offer_states_the_facts_a_partner_decides_on(language: str) -> None:
    mail = render("referral_offered", language, context("referral_offered"))

    link = f"{PORTAL}/referrals/{RID}"
    for part in (mail.text, mail.html):
        assert RID in part
        assert RESPOND_BY_TEXT in part
        assert "2026-03-02 09:00 UTC" in part  # offered at
        assert link in part
        assert "C27" in part
    assert RESPOND_BY_TEXT in mail.subject
    # Before acceptance the partner learns no name and no contact details.
    assert ENTERPRISE.legal_name_en not in mail.text
    assert CONTACT.email not in mail.text


@pytest.mark.parametrize("language", SUPPORTED)
def test_the_deadline_is_also_given_on_the_clock_of_hong_kong_and_beijing(language: str) -> None:
    mail = render("referral_offered", language, context("referral_offered"))

    assert "2026-03-04 17:30" in mail.text


def test_names_are_localised() -> None:
    texts = {language: render("referral_offered", language, context("referral_offered")).text for language in SUPPORTED}

    assert "Legal services" in texts["en"] and "United Arab Emirates, Saudi Arabia" in texts["en"]
    assert "USD 50,000 to 200,000" in texts["en"] and "Manufacturing (C27)" in texts["en"]
    assert "法律服务" in texts["zh-Hans"] and "阿联酋、沙特阿拉伯" in texts["zh-Hans"] and "广东省" in texts["zh-Hans"]
    assert "5万至20万美元" in texts["zh-Hans"] and "制造业（C27）" in texts["zh-Hans"]
    assert "法律服務" in texts["zh-Hant"] and "阿聯酋、沙地阿拉伯" in texts["zh-Hant"] and "廣東省" in texts["zh-Hant"]
    assert "5萬至20萬美元" in texts["zh-Hant"] and "製造業（C27）" in texts["zh-Hant"]


# Characters only Simplified Chinese writes (their Traditional forms after the bar), and the reverse.
SIMPLIFIED_ONLY = "转务业们这对时发关联网络请邮间该会专"
TRADITIONAL_ONLY = "轉務業們這對時發關聯網絡請郵間該會專"


@pytest.mark.parametrize("kind", sorted(PARTNER_KINDS | ENTERPRISE_KINDS | OPERATOR_KINDS))
def test_traditional_and_simplified_are_each_written_in_their_own_script(kind: str) -> None:
    hans = render(kind, "zh-Hans", context(kind))
    hant = render(kind, "zh-Hant", context(kind))

    assert hans.subject != hant.subject
    assert hans.text != hant.text
    assert hans.html != hant.html
    for mail, foreign in ((hant, SIMPLIFIED_ONLY), (hans, TRADITIONAL_ONLY)):
        stray = {char for char in mail.subject + mail.text + mail.html if char in foreign}
        assert not stray, f"{kind}: {sorted(stray)}"


def test_common_words_follow_each_region() -> None:
    hans = render("referral_offered", "zh-Hans", context("referral_offered")).text
    hant = render("referral_offered", "zh-Hant", context("referral_offered")).text

    for word in ("转介", "合作伙伴", "企业", "回复", "北京时间"):
        assert word in hans
    # Hong Kong usage, not just converted characters: 回覆, 香港時間, 聯絡資料.
    for word in ("轉介", "合作夥伴", "企業", "回覆", "香港時間", "聯絡資料"):
        assert word in hant
    marketing = {"need": {**payloads()["referral_offered"]["need"], "service_category": "marketing"}}
    assert "市场营销" in render("referral_offered", "zh-Hans", context("referral_offered", **marketing)).text
    assert "市場推廣" in render("referral_offered", "zh-Hant", context("referral_offered", **marketing)).text


@pytest.mark.parametrize("language", SUPPORTED)
@pytest.mark.parametrize(
    ("kind", "field"),
    [
        ("referral_offered", "description"),
        ("referral_closed", "reason"),
        ("referral_rated", "comment"),
        ("referral_completed_enterprise", "notes"),
        ("request_received", "needs"),
    ],
)
def test_html_escapes_what_users_wrote(kind: str, field: str, language: str) -> None:
    mail = render(kind, language, context(kind))

    assert "<script>" not in mail.html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in mail.html
    # The plain-text part shows it as written: nothing there is markup.
    assert SCRIPT in mail.text


@pytest.mark.parametrize("language", SUPPORTED)
def test_names_with_markup_characters_are_escaped_in_html(language: str) -> None:
    mail = render("referral_accepted_enterprise", language, context("referral_accepted_enterprise"))

    assert "Wong &amp; Partners Solicitors" in mail.html
    assert "Wong & Partners Solicitors" in mail.text
    assert "Wong & Partners Solicitors" in mail.subject


@pytest.mark.parametrize("language", SUPPORTED)
def test_a_subject_stays_on_one_line_whatever_the_data(language: str) -> None:
    injected = "Wong & Partners\r\nBcc: everyone@example.com\n\u2028X-Evil: 1"
    mail = render(
        "referral_accepted_enterprise", language, context("referral_accepted_enterprise", partner_name=injected)
    )

    assert len(mail.subject.splitlines()) == 1
    assert "Bcc: everyone@example.com" in mail.subject  # harmless once on the same line


@pytest.mark.parametrize("language", SUPPORTED)
def test_contact_block_only_when_the_enterprise_shared_it(language: str) -> None:
    shared = render("referral_accepted", language, context("referral_accepted"))
    enterprise = {**payloads()["referral_accepted"]["enterprise"], "contact": None}
    withheld = render("referral_accepted", language, context("referral_accepted", enterprise=enterprise))

    for mail in (shared, withheld):
        assert ENTERPRISE.legal_name_en in mail.text and ENTERPRISE.legal_name_zh in mail.text
    for fact in (CONTACT.name, CONTACT.email, CONTACT.phone):
        assert fact in shared.text and fact in shared.html
        assert fact not in withheld.text and fact not in withheld.html


@pytest.mark.parametrize("language", SUPPORTED)
def test_each_withdrawal_reason_is_worded(language: str) -> None:
    texts = {
        reason: render("offer_withdrawn", language, context("offer_withdrawn", reason=reason)).text
        for reason in OfferWithdrawalReason
    }
    assert len(set(texts.values())) == len(OfferWithdrawalReason)
    for reason, text in texts.items():
        assert labels(language).WITHDRAWALS[reason.value] in text
        assert reason.value not in text


@pytest.mark.parametrize("language", SUPPORTED)
@pytest.mark.parametrize("shared", [True, False, None])
def test_accepted_enterprise_mail_says_how_the_introduction_happens(language: str, shared: bool | None) -> None:
    mail = render(
        "referral_accepted_enterprise", language, context("referral_accepted_enterprise", contact_shared=shared)
    )

    assert "Wong & Partners Solicitors" in mail.text


@pytest.mark.parametrize("language", SUPPORTED)
def test_optional_facts_may_be_left_out(language: str) -> None:
    moments = ("received_at", "offered_at", "respond_by", "accepted_at", "unmatched_at", "completed_at")
    for kind in ENTERPRISE_KINDS:
        facts = {k: v for k, v in context(kind).items() if k not in ("service_category", "notes", *moments)}
        mail = render(kind, language, facts)
        assert "UTC" not in mail.text
    # The category may come inside the need, as the notifications service remembers it.
    need = {"service_category": "intellectual_property", "target_markets": ["DE"]}
    facts = {k: v for k, v in context("referral_offered_enterprise").items() if k != "service_category"}
    offered = render("referral_offered_enterprise", language, {**facts, "need": need})
    assert labels(language).CATEGORIES["intellectual_property"] in offered.subject
    assert labels(language).CATEGORIES["intellectual_property"] in offered.text
    operators = {k: v for k, v in context("endpoint_disabled_operators").items() if k != "partner_name"}
    assert "wong-partners" in render("endpoint_disabled_operators", language, operators).subject
    bare = context("referral_offered")
    bare["enterprise"] = {"sector": None, "size_band": None, "hq_province": None, "preferred_languages": []}
    bare["need"] = {**bare["need"], "description": "", "languages": []}
    assert RESPOND_BY_TEXT in render("referral_offered", language, bare).text


@pytest.mark.parametrize("language", SUPPORTED)
def test_one_need_or_several(language: str) -> None:
    one = context("request_received")
    one["needs"] = one["needs"][:1]
    single = render("request_received", language, one)
    several = render("request_received", language, context("request_received"))

    assert REQUEST_ID in single.text and REQUEST_ID in several.text
    assert single.subject != several.subject
    assert labels(language).CATEGORIES["banking_and_fund_management"] in several.text
    assert labels(language).CATEGORIES["banking_and_fund_management"] not in single.text
    assert f"{PORTAL}/service-requests/{REQUEST_ID}" in several.text


@pytest.mark.parametrize("language", SUPPORTED)
def test_every_outcome_and_score_renders(language: str) -> None:
    for outcome in Outcome:
        text = render(
            "referral_completed_enterprise", language, context("referral_completed_enterprise", outcome=outcome)
        ).text
        assert labels(language).OUTCOMES[outcome.value] in text
    for score in range(1, 6):
        text = render("referral_rated", language, context("referral_rated", score=score)).text
        assert "★" * score + "☆" * (5 - score) in text


@pytest.mark.parametrize(
    "moment",
    [
        RESPOND_BY,
        RESPOND_BY.replace(tzinfo=None),  # naive: taken as UTC
        RESPOND_BY.astimezone(timezone(timedelta(hours=8))),  # 17:30 in Hong Kong
        RESPOND_BY.astimezone(timezone(timedelta(hours=-5))),
        "2026-03-04T09:30:00Z",  # as in a JSON payload
        "2026-03-04T17:30:00+08:00",
    ],
)
def test_moments_are_written_in_utc(moment: datetime | str) -> None:
    mail = render("referral_offered", "en", context("referral_offered", respond_by=moment))

    assert f"Respond by: {RESPOND_BY_TEXT}" in mail.text


def test_a_json_payload_renders_as_well() -> None:
    facts: Mapping[str, Any] = {
        "portal_url": PORTAL + "/",
        **ReferralOfferedToPartner.model_validate(payloads()["referral_offered"]).model_dump(mode="json"),
    }
    mail = render("referral_offered", "zh-Hant", facts)

    assert RESPOND_BY_TEXT in mail.text
    assert f"{PORTAL}/referrals/{RID}" in mail.text  # the trailing slash of the portal URL does not double


def test_a_missing_fact_fails_loudly() -> None:
    facts = context("referral_offered")
    del facts["respond_by"]

    with pytest.raises(jinja2.UndefinedError):
        render("referral_offered", "en", facts)


def test_unknown_kind_or_language() -> None:
    with pytest.raises(UnknownTemplate):
        render("referral_teleported", "en", context("referral_rated"))
    with pytest.raises(UnknownTemplate):
        render("referral_rated", "fr", context("referral_rated"))
    with pytest.raises(UnknownTemplate):
        render("base", "en", context("referral_rated"))
    with pytest.raises(LookupError):
        render("referral_rated", "zh-HK", context("referral_rated"))


# --- choosing the language ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("preferred", "expected"),
    [
        ([], "en"),
        (["en"], "en"),
        (["en-GB"], "en"),
        (["en-US", "zh-HK"], "en"),
        (["zh-CN"], "zh-Hans"),
        (["zh-SG"], "zh-Hans"),
        (["zh"], "zh-Hans"),
        (["zh-Hans"], "zh-Hans"),
        (["zh-Hans-HK"], "zh-Hans"),
        (["zh-HK"], "zh-Hant"),
        (["zh-TW"], "zh-Hant"),
        (["zh-MO"], "zh-Hant"),
        (["zh-Hant"], "zh-Hant"),
        (["zh-Hant-CN"], "zh-Hant"),
        (["zh_hk"], "zh-Hant"),
        (["ZH-hk"], "zh-Hant"),
        (["yue"], "zh-Hant"),
        (["fr", "de-CH", "zh-HK", "en"], "zh-Hant"),
        (["ar", "ja"], "en"),
        (["", "  ", "*"], "en"),
        (["zh-HK;q=0.9"], "zh-Hant"),
        ("zh-HK,zh;q=0.8,en;q=0.5", "zh-Hant"),  # a whole Accept-Language header
    ],
)
def test_choose_language(preferred: list[str], expected: str) -> None:
    assert choose_language(preferred) == expected


@given(st.lists(st.text(max_size=20), max_size=6))
def test_choose_language_always_picks_a_supported_language(preferred: list[str]) -> None:
    assert choose_language(preferred) in SUPPORTED


_SUBTAG = st.sampled_from(["zh", "en", "yue", "fr", "Hans", "Hant", "HK", "TW", "MO", "CN", "SG", "US", "x", "419"])


@given(st.lists(st.lists(_SUBTAG, min_size=1, max_size=3).map("-".join), max_size=4))
def test_choose_language_takes_the_first_tag_it_can_serve(preferred: list[str]) -> None:
    chosen = choose_language(preferred)

    assert chosen in SUPPORTED
    servable = [tag for tag in preferred if tag.split("-")[0] in ("zh", "en", "yue")]
    if not servable:
        assert chosen == "en"
    else:
        assert chosen == choose_language([servable[0]])


# --- the MIME message ---------------------------------------------------------------------------------------

CONFIG = SmtpConfig(
    host="smtp.example.hk",
    port=587,
    sender="GoGlobal Referral Network <no-reply@goglobal.hk>",
    username="mailer",
    password="s3cret-Passw0rd",
    start_tls=True,
)


def built(language: str = "zh-Hant", message_id: str = "notif-0001") -> EmailMessage:
    mail = render("referral_offered", language, context("referral_offered"))
    return build_message(CONFIG, "intake@wongpartners.example.hk", mail, message_id, language, date=LATER)


def test_the_message_is_multipart_alternative_text_then_html() -> None:
    mail = render("referral_offered", "zh-Hant", context("referral_offered"))
    message = built()

    parsed = email.message_from_bytes(message.as_bytes(policy=email.policy.SMTP), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    assert parsed.get_content_type() == "multipart/alternative"
    text, html = parsed.iter_parts()
    assert text.get_content_type() == "text/plain" and html.get_content_type() == "text/html"
    assert text.get_content_charset() == html.get_content_charset() == "utf-8"
    assert isinstance(text, EmailMessage) and isinstance(html, EmailMessage)
    assert text.get_content().replace("\r\n", "\n") == mail.text
    assert html.get_content().replace("\r\n", "\n") == mail.html
    assert parsed["Subject"] == mail.subject
    assert parsed["Content-Language"] == "zh-Hant"
    assert parsed["Message-ID"] == "<notif-0001@goglobal.hk>"
    assert parsed["From"] == CONFIG.sender
    assert parsed["To"] == "intake@wongpartners.example.hk"
    assert parsed["Date"] == "Fri, 06 Mar 2026 02:15:00 +0000"
    assert parsed["Auto-Submitted"] == "auto-generated"


def test_headers_go_out_as_ascii() -> None:
    raw = built().as_bytes(policy=email.policy.SMTP)
    headers = raw.split(b"\r\n\r\n", 1)[0]

    headers.decode("ascii")
    assert b"=?utf-8?" in headers  # the Chinese subject, encoded


def test_retries_of_a_notification_keep_its_message_id() -> None:
    assert built()["Message-ID"] == built()["Message-ID"] == "<notif-0001@goglobal.hk>"
    assert built(message_id="notif-0002")["Message-ID"] != built()["Message-ID"]


@pytest.mark.parametrize(
    ("message_id", "header"),
    [
        ("0b6f0c3e-8a1d-5b2e-9c4f-7d3a2e1f0a9b", "<0b6f0c3e-8a1d-5b2e-9c4f-7d3a2e1f0a9b@goglobal.hk>"),
        ("0b6f0c3e-8a1d-5b2e:email", "<0b6f0c3e-8a1d-5b2e.email@goglobal.hk>"),
        ("notif.2026.0001", "<notif.2026.0001@goglobal.hk>"),
        ("a b", "<a.b@goglobal.hk>"),
        ("a@b", "<a.b@goglobal.hk>"),
        ("x>\r\nBcc: y@z", "<x.Bcc.y.z@goglobal.hk>"),
        ("<x>", "<x@goglobal.hk>"),
        (".x..y.", "<x.y@goglobal.hk>"),
    ],
)
def test_a_message_id_is_made_valid_the_same_way_every_time(message_id: str, header: str) -> None:
    assert built(message_id=message_id)["Message-ID"] == header
    assert built(message_id=message_id)["Message-ID"] == header


@pytest.mark.parametrize("message_id", ["", " ", ":::", "<@>"])
def test_a_message_id_with_nothing_usable_is_refused(message_id: str) -> None:
    with pytest.raises(ValueError, match="Message-ID"):
        built(message_id=message_id)


@pytest.mark.parametrize("to", ["a@example.hk\r\nBcc: everyone@example.com", "", "a@example.hk, b@example.hk"])
def test_one_recipient_and_no_header_injection(to: str) -> None:
    mail = render("referral_rated", "en", context("referral_rated"))

    with pytest.raises(ValueError):
        build_message(CONFIG, to, mail, "notif-1", "en")


def test_the_password_never_shows() -> None:
    assert CONFIG.password is not None
    assert CONFIG.password not in repr(CONFIG)
    assert CONFIG.password not in str(CONFIG)
    assert CONFIG.password not in built().as_string()


@pytest.mark.parametrize(
    "changes",
    [
        {"start_tls": True, "use_tls": True},
        {"username": "mailer", "password": None},
        {"username": None, "password": "hunter2-secret"},
        {"port": 0},
        {"timeout_s": 0},
    ],
)
def test_contradictory_settings_are_refused(changes: dict[str, Any]) -> None:
    settings: dict[str, Any] = {"host": "smtp.example.hk", "port": 25, "sender": "no-reply@goglobal.hk", **changes}
    with pytest.raises(ValueError) as caught:
        SmtpConfig(**settings)
    assert "hunter2-secret" not in str(caught.value)
