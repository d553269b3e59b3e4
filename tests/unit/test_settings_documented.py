"""Every `GOGLOBAL_*` setting the code reads is documented in README.md or docs/*.md.

A setting nobody can find is a setting nobody can turn, or one turned by accident. The settings are collected
from the code, never from a list kept beside it:

- the pydantic-settings classes of shared/src and services/*/src: `env_prefix` + field name, or the field's
  alias, which pydantic-settings reads as it is, without the prefix (and nested fields when the class sets
  `env_nested_delimiter`);
- every `GOGLOBAL_*` name written in the source (not the Markdown) of services/, shared/src, deploy/ and bench/:
  `os.environ` reads, CLI options, manifests, and messages that tell an operator which variable to set.

When this fails, add the setting to the "Settings reference" of docs/operations.md (default, format, and
`required` when it has no default).
"""

import importlib
import inspect
import re
import types
import typing
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path

from pydantic import AliasChoices, AliasPath, BaseModel
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

ROOT = Path(__file__).resolve().parents[2]
SOURCE_ROOTS = [ROOT / "shared" / "src", *sorted((ROOT / "services").glob("*/src"))]
LITERAL_DIRS = [ROOT / "services", ROOT / "shared" / "src", ROOT / "deploy", ROOT / "bench"]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# A whole variable name: not part of a longer identifier, and not a family written as `GOGLOBAL_SMTP_*`.
NAME = re.compile(r"(?<![A-Za-z0-9_])GOGLOBAL_[A-Z0-9_]*[A-Z0-9](?![A-Za-z0-9_*])")
# A class whose bases name a settings class: the modules worth importing to find the BaseSettings subclasses.
SETTINGS_CLASS = re.compile(r"^class \w+\([^)]*Settings\b", re.MULTILINE)


def _packages() -> set[str]:
    return {p.name for root in SOURCE_ROOTS for p in root.iterdir() if (p / "__init__.py").is_file()}


def _all_subclasses(cls: type[BaseSettings]) -> Iterator[type[BaseSettings]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_subclasses(sub)


@cache
def settings_classes() -> tuple[type[BaseSettings], ...]:
    """The project's BaseSettings subclasses, found by importing every module that defines a settings class."""
    for root in SOURCE_ROOTS:
        for path in sorted(root.rglob("*.py")):
            if path.name != "__main__.py" and SETTINGS_CLASS.search(path.read_text("utf-8")):
                importlib.import_module(".".join(path.relative_to(root).with_suffix("").parts))
    ours = _packages()
    found = {cls for cls in _all_subclasses(BaseSettings) if cls.__module__.split(".")[0] in ours}
    return tuple(sorted(found, key=lambda cls: f"{cls.__module__}.{cls.__qualname__}"))


def _aliases(info: FieldInfo) -> list[str]:
    """The variable names an alias stands for (an AliasPath reads a JSON variable named by its first element)."""
    alias = info.validation_alias if info.validation_alias is not None else info.alias
    if isinstance(alias, AliasChoices):
        choices: list[str | AliasPath] = list(alias.choices)
    else:
        choices = [alias] if alias else []
    names = []
    for choice in choices:
        first = choice.path[0] if isinstance(choice, AliasPath) else choice
        if isinstance(first, str):
            names.append(first)
    return names


def _nested_model(annotation: object) -> type[BaseModel] | None:
    """The model inside `annotation` (also inside `Model | None`), whose fields a nested delimiter reaches."""
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if (model := _nested_model(arg)) is not None:
                return model
    return None


def _field_variables(
    fields: Mapping[str, FieldInfo], prefix: str, delimiter: str | None, by_name: bool
) -> Iterator[str]:
    for name, info in fields.items():
        aliases = _aliases(info)
        tops = [*aliases, f"{prefix}{name}"] if by_name or not aliases else aliases
        for top in tops:
            yield top.upper()
            model = _nested_model(info.annotation) if delimiter else None
            if model is not None and delimiter:
                yield from _field_variables(model.model_fields, f"{top}{delimiter}", delimiter, by_name)


def class_variables(cls: type[BaseSettings]) -> set[str]:
    """The environment variables one settings class reads, read from its fields and config (not instantiated:
    some classes need secrets in the environment to be built)."""
    config = cls.model_config
    by_name = bool(config.get("populate_by_name") or config.get("validate_by_name"))
    prefix = config.get("env_prefix") or ""
    return set(_field_variables(cls.model_fields, prefix, config.get("env_nested_delimiter"), by_name))


def literal_variables() -> dict[str, set[str]]:
    """Each `GOGLOBAL_*` name written in the source outside Markdown, with the files that write it."""
    found: dict[str, set[str]] = {}
    for directory in LITERAL_DIRS:
        for path in sorted(directory.rglob("*")):
            if not path.is_file() or "__pycache__" in path.parts or path.suffix in (".md", ".pyc"):
                continue
            for name in NAME.findall(path.read_text("utf-8", errors="replace")):
                found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return found


@cache
def code_settings() -> dict[str, tuple[str, ...]]:
    """Every setting in the code, with where it comes from."""
    where: dict[str, set[str]] = {}
    for cls in settings_classes():
        for name in class_variables(cls):
            where.setdefault(name, set()).add(cls.__qualname__)
    for name, files in literal_variables().items():
        where.setdefault(name, set()).update(files)
    return {name: tuple(sorted(origins)) for name, origins in sorted(where.items())}


def documented_in(text: str) -> set[str]:
    return set(NAME.findall(text))


@cache
def documented() -> frozenset[str]:
    names: set[str] = set()
    for document in DOCUMENTS:
        names |= documented_in(document.read_text("utf-8"))
    return frozenset(names)


def test_the_collector_finds_the_settings_it_must() -> None:
    """An empty or mis-derived collection would let every other test here pass: check it on known settings."""
    names = {cls.__name__ for cls in settings_classes()}
    assert {"ServiceSettings", "IntakeSettings", "MatchingSettings", "NotificationsSettings"} <= names
    settings = code_settings()
    expected = {
        "GOGLOBAL_WEBHOOK_MASTER_KEY",  # a field of two classes, no default
        "GOGLOBAL_KAFKA_BOOTSTRAP_SERVERS",  # inherited from ServiceSettings
        "GOGLOBAL_RETRY_SCHEDULE_S",
        "GOGLOBAL_ALLOW_PRIVATE_WEBHOOK_TARGETS",
        "GOGLOBAL_MATCHING_SEED_PARTNERS_FILE",  # a validation alias
        "GOGLOBAL_STATE_DIR",  # os.environ in deploy/local and bench
        "GOGLOBAL_API_KEY",  # a CLI option's envvar
    }
    assert expected <= settings.keys(), f"not collected: {sorted(expected - settings.keys())}"
    # The alias replaces the prefixed field name: pydantic-settings does not read GOGLOBAL_SEED_PARTNERS_FILE.
    assert "GOGLOBAL_SEED_PARTNERS_FILE" not in settings


def test_name_matching_is_exact() -> None:
    text = "`GOGLOBAL_SMTP_*`, `GOGLOBAL_KAFKA_SASL_MECHANISM` / `_USERNAME`, MY_GOGLOBAL_X, GOGLOBAL_SMTP_PORTS"
    assert documented_in(text) == {"GOGLOBAL_KAFKA_SASL_MECHANISM", "GOGLOBAL_SMTP_PORTS"}


def test_every_setting_is_documented() -> None:
    missing = {name: origins for name, origins in code_settings().items() if name not in documented()}
    assert not missing, "settings named in no document (README.md, docs/*.md):\n" + "\n".join(
        f"  {name}  ({', '.join(origins)})" for name, origins in missing.items()
    )


def test_required_settings_are_marked_required() -> None:
    """A setting without a default in a service's settings class is marked `required` where it is documented."""
    leaves = [cls for cls in settings_classes() if not any(issubclass(o, cls) for o in settings_classes() if o != cls)]
    required: set[str] = set()
    for cls in leaves:
        prefix = cls.model_config.get("env_prefix") or ""
        for name, info in cls.model_fields.items():
            if info.is_required():
                required.update(a.upper() for a in _aliases(info) or [f"{prefix}{name}"])
    assert "GOGLOBAL_WEBHOOK_MASTER_KEY" in required
    lines = [line for document in DOCUMENTS for line in document.read_text("utf-8").splitlines()]
    unmarked = sorted(
        name for name in required if not any(name in documented_in(line) and "required" in line for line in lines)
    )
    assert not unmarked, f"required settings documented on no line that says `required`: {unmarked}"
