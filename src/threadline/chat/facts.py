"""The shape an extractor's reply must have (chat/memory.py), validated by pydantic: imported
only when a reply is parsed, so a turn's start does not pay for pydantic."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from threadline.models import Category


class ExtractedFact(BaseModel):
    """One fact as the extractor must reply it."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    fact: str = Field(min_length=1, max_length=2000)
    category: Category
    importance: int = Field(ge=1, le=5)
    source_message_id: int | None = None
    supersedes: int | None = None

    @field_validator("category", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value


FACTS = TypeAdapter(list[ExtractedFact])
