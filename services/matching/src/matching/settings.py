from datetime import timedelta
from pathlib import Path

from pydantic import Field

from goglobal_contract.enums import OfferStrategy, ServiceCategory
from goglobal_shared.settings import ServiceSettings
from matching.engine import Weights
from matching.service import OfferPolicy


class MatchingSettings(ServiceSettings):
    service_name: str = "matching"
    http_port: int = Field(default=8001, ge=0, le=65535)
    seed_partners_file: Path | None = Field(
        default=None,
        validation_alias="GOGLOBAL_MATCHING_SEED_PARTNERS_FILE",
        description="JSON list of engine partners put into the index at start, before the directory (tests)",
    )
    weight_market: float = Field(default=0.30, ge=0, le=1)
    weight_sector: float = Field(default=0.10, ge=0, le=1)
    weight_language: float = Field(default=0.15, ge=0, le=1)
    weight_specialty: float = Field(default=0.15, ge=0, le=1)
    weight_quality: float = Field(default=0.15, ge=0, le=1)
    weight_load: float = Field(default=0.10, ge=0, le=1)
    weight_speed: float = Field(default=0.05, ge=0, le=1)
    fairness_margin: float = Field(default=0.05, ge=0, le=1, description="score band shared out among partners")
    default_offer_strategy: OfferStrategy = OfferStrategy.SEQUENTIAL
    parallel_offers: int = Field(default=2, ge=2, le=10, description="k for `parallel` when the request names none")
    category_offer_strategies: dict[ServiceCategory, OfferStrategy] = Field(
        default_factory=dict, description='per category, e.g. {"logistics": "parallel"} (JSON)'
    )
    response_hour_s: float = Field(
        default=3600.0, gt=0, le=3600, description="seconds in one hour of a response window (tests compress it)"
    )
    scheduler_interval_s: float = Field(default=1.0, gt=0, le=60)

    @property
    def offer_policy(self) -> OfferPolicy:
        weights = Weights(
            market=self.weight_market,
            sector=self.weight_sector,
            language=self.weight_language,
            specialty=self.weight_specialty,
            quality=self.weight_quality,
            load=self.weight_load,
            speed=self.weight_speed,
        )
        return OfferPolicy(
            weights=weights,
            fairness_margin=self.fairness_margin,
            hour=timedelta(seconds=self.response_hour_s),
            default_strategy=self.default_offer_strategy,
            parallel_offers=self.parallel_offers,
            category_strategies=self.category_offer_strategies,
        )
