"""Survey descriptors: what a source survey is, following the EMM Survey Registry.

One ``surveys/<id>/survey.yaml`` per survey says who made it, whom it covers,
how it was sampled, how to get and cite it, and which waves exist with their
distributed files and declared codebooks. The model is strict (unknown keys are
errors) so a misspelt field never passes silently.

Where a fact is not checked against a file or an official page, the block that
holds it carries ``unverified: true`` and says what is known in ``notes``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

CountryCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2 (XK for Kosovo)")]
LanguageCode = Annotated[str, Field(pattern=r"^[a-z]{2,3}$", description="ISO 639-1 (or 639-2 where no 639-1)")]
NutsCode = Annotated[str, Field(pattern=r"^[A-Z]{2}[0-9A-Z]{0,3}$")]
Doi = Annotated[str, Field(pattern=r"^10\.\d{4,9}/\S+$")]
YearMonth = Annotated[str, Field(pattern=r"^\d{4}(-(0[1-9]|1[0-2]))?$", description="YYYY or YYYY-MM")]

Evidence = Literal["seen", "recalled", "modelled"]
"""How a fact is known: read in a real file/codebook, remembered from documentation, or modelled."""

NameStatus = Literal["seen", "partly_seen", "modelled"]
"""Whether a wave's variable names come from the distributed file (seen) or the questionnaire (modelled)."""

PopulationDefinition = Literal[
    "general_population",
    "all_foreign_residents",
    "foreign_origin",
    "first_generation",
    "second_generation",
    "ethnic_self_identification",
    "selected_groups",
]


class Block(BaseModel):
    """Base of every descriptor block: strict keys, an ``unverified`` flag and free notes."""

    model_config = ConfigDict(extra="forbid")

    unverified: bool = False
    notes: str | None = None


class City(Block):
    """A city sampled by a multi-city survey, with its NUTS units."""

    name: str
    country: CountryCode
    nuts_version: Literal["2013", "2016", "2021", "2024"]
    nuts2: list[NutsCode] = Field(min_length=1)
    nuts3: list[NutsCode] = Field(default_factory=list)

    @model_validator(mode="after")
    def _codes_nest(self) -> City:
        for code in self.nuts2:
            if len(code) != 4 or code[:2] != _nuts_country(self.country):
                raise ValueError(f"nuts2 {code!r} is not a NUTS 2 code of {self.country}")
        for code in self.nuts3:
            if len(code) != 5 or not any(code.startswith(n2) for n2 in self.nuts2):
                raise ValueError(f"nuts3 {code!r} does not lie in nuts2 {self.nuts2}")
        return self


def _nuts_country(iso: str) -> str:
    """NUTS uses EL for Greece and UK for the United Kingdom."""
    return {"GR": "EL", "GB": "UK"}.get(iso, iso)


class Geography(Block):
    """Where respondents can be located: NUTS version and the variables that carry it."""

    nuts_version: Literal["2013", "2016", "2021", "2024", "mixed"] | None = None
    region_variables: list[str] = Field(default_factory=list)
    urbanisation_variable: str | None = None
    city_variable: str | None = None


class AgeBand(Block):
    """Target age band; ``max: null`` means no upper limit."""

    min: int | None = Field(default=None, ge=0, le=120)
    max: int | None = Field(default=None, ge=0, le=120)

    @model_validator(mode="after")
    def _ordered(self) -> AgeBand:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"age band min {self.min} is above max {self.max}")
        return self


class TargetPopulation(Block):
    """Whom the survey means to represent and how they were found."""

    text: str
    definition: PopulationDefinition
    identification: str
    age: AgeBand
    sex: Literal["all", "male", "female"] = "all"
    groups: list[str] = Field(default_factory=list)


class Sampling(Block):
    """Sampling design in registry terms."""

    type: Literal["probability", "non_probability", "mixed"]
    units: list[str] = Field(min_length=1)


class ResponseRate(Block):
    """How the response rate was computed (formula text) and, if known, its range."""

    formula: str | None = None
    reported: str | None = None


class DataCollection(Block):
    """Who asked the questions and how."""

    interviewer: Literal["professional", "trained_coethnic", "mixed", "none", "unknown"]
    modes: list[Literal["PAPI", "CAPI", "CATI", "CAWI", "mail", "self_completion", "video"]] = Field(min_length=1)


class Languages(Block):
    """Questionnaire, data and documentation languages (ISO 639 codes)."""

    questionnaire: list[LanguageCode] = Field(default_factory=list)
    documentation: list[LanguageCode] = Field(min_length=1)


class WeightVariable(Block):
    """One weight shipped in the files."""

    name: str
    kind: Literal["design", "post_stratification", "calibration", "population_size", "analysis",
                  "household", "person", "other"]
    label: str | None = None


class DesignVariables(Block):
    """Sample-design variables for design-based standard errors (null when not shipped)."""

    psu: str | None = None
    stratum: str | None = None


class Access(Block):
    """Whether and how microdata can be obtained."""

    microdata_available: bool
    mode: Literal["open", "registration", "application", "restricted", "not_available", "unknown"]
    distributor: str | None = None
    archive_id: str | None = None
    conditions: str
    licence: str | None = None


PLACEHOLDER = re.compile(r"<[^<>]*>")


def _no_placeholder(text: str | None, what: str) -> None:
    found = PLACEHOLDER.search(text or "")
    if found:
        raise ValueError(f"{what} holds the placeholder {found.group()!r}; write what is known and leave unknown "
                         "facts out (the codebooks say what is not known)")


class FileEdition(Block):
    """Variables of the distributed files that name the file's own edition (ESS: name, edition, proddate).

    A build reads them from the first row of each file, so a codebook of a built database cites the
    edition that was loaded, not the one the descriptor declares.
    """

    name: str | None = None
    edition: str | None = None
    production_date: str | None = None


class Citation(Block):
    """Recommended citation of the survey; ``doi`` stays null when not known for certain.

    ``author`` and ``publisher`` are what a survey-wave's data-set citation names (with the wave's
    ``citation`` block); ``text`` cites the survey as a whole. No ``<placeholders>``: a fact that is
    not known is left out, and the codebooks say it is not known.
    """

    text: str
    doi: Doi | None = None
    author: str | None = None
    publisher: str | None = None
    file_edition: FileEdition | None = None

    @model_validator(mode="after")
    def _no_placeholders(self) -> Citation:
        _no_placeholder(self.text, "citation.text")
        return self


class WaveCitation(Block):
    """A survey-wave's data set as the project declares it: title, edition and its release year."""

    title: str
    edition: str | None = None
    year: int | None = Field(default=None, ge=1970, le=2100)

    @model_validator(mode="after")
    def _no_placeholders(self) -> WaveCitation:
        _no_placeholder(self.title, "citation.title")
        _no_placeholder(self.edition, "citation.edition")
        return self


class Metadata(Block):
    """Metadata standards the producer publishes documentation in."""

    standards: list[Literal["DDI-Codebook", "DDI-Lifecycle", "Dublin Core", "SDMX", "none", "unknown"]]


class Fieldwork(Block):
    """Fieldwork period, as YYYY or YYYY-MM."""

    start: YearMonth
    end: YearMonth

    @model_validator(mode="after")
    def _ordered(self) -> Fieldwork:
        if self.start[:4] > self.end[:4] or (len(self.start) == len(self.end) and self.start > self.end):
            raise ValueError(f"fieldwork start {self.start} is after end {self.end}")
        return self


class DistributedFile(Block):
    """A data file as the archive distributes it; ``evidence`` says whether its name is seen."""

    name: str
    format: Literal["sav", "zsav", "por", "dta", "csv", "other"]
    evidence: Evidence


class SampleSize(Block):
    """Number of respondents in the wave's file; ``approximate`` when not an exact count."""

    respondents: int = Field(gt=0)
    approximate: bool = False


class Wave(Block):
    """One wave/round: fieldwork, files, sample, countries, weights and its declared codebook."""

    id: str = Field(pattern=r"^[A-Za-z0-9]+$")
    year: int = Field(ge=1970, le=2100)
    fieldwork: Fieldwork
    names: NameStatus
    files: list[DistributedFile] = Field(min_length=1)
    sample_size: SampleSize
    countries: list[CountryCode] = Field(min_length=1)
    weights: list[str] = Field(default_factory=list)
    design: DesignVariables = Field(default_factory=DesignVariables)
    doi: Doi | None = None
    citation: WaveCitation | None = None
    codebook: str

    @model_validator(mode="after")
    def _codebook_name(self) -> Wave:
        expected = f"codebook_{self.id}.yaml"
        if self.codebook != expected:
            raise ValueError(f"wave {self.id!r}: codebook must be {expected!r}, got {self.codebook!r}")
        return self


class SurveyDescriptor(Block):
    """A whole survey: registry fields plus its waves."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str
    acronym: str
    producer: list[str] = Field(min_length=1)
    names: Literal["seen", "partly_seen", "modelled", "mixed"]
    scope: Literal["national", "cross-national", "multi-city"]
    countries: list[CountryCode] = Field(min_length=1)
    cities: list[City] = Field(default_factory=list)
    geography: Geography = Field(default_factory=Geography)
    target_population: TargetPopulation
    sampling: Sampling
    response_rate: ResponseRate = Field(default_factory=ResponseRate)
    data_collection: DataCollection
    languages: Languages
    weights: list[WeightVariable] = Field(default_factory=list)
    design: DesignVariables = Field(default_factory=DesignVariables)
    access: Access
    citation: Citation
    metadata: Metadata
    waves: list[Wave] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> SurveyDescriptor:
        ids = [w.id for w in self.waves]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate wave ids: {dupes}")
        known = set(self.countries)
        for wave in self.waves:
            extra = sorted(set(wave.countries) - known)
            if extra:
                raise ValueError(f"wave {wave.id!r} lists countries not in the survey's countries: {extra}")
            unknown_w = sorted(set(wave.weights) - {w.name for w in self.weights})
            if unknown_w:
                raise ValueError(f"wave {wave.id!r} lists weights not described under weights: {unknown_w}")
        for city in self.cities:
            if city.country not in known:
                raise ValueError(f"city {city.name!r} is in {city.country}, which is not in countries")
        statuses = {w.names for w in self.waves}
        expected = statuses.pop() if len(statuses) == 1 else "mixed"
        if self.names != expected:
            raise ValueError(f"names is {self.names!r} but the waves say {expected!r}")
        return self

    def wave(self, wave_id: str) -> Wave:
        """The wave with id ``wave_id`` (KeyError if absent)."""
        for w in self.waves:
            if w.id == wave_id:
                return w
        raise KeyError(f"{self.id} has no wave {wave_id!r}; waves: {[w.id for w in self.waves]}")


def load_descriptor(path: Path) -> SurveyDescriptor:
    """Read ``surveys/<id>/survey.yaml`` and validate it (pydantic ValidationError on bad content, and on
    what the line-aware loader refuses: a number such as ``040`` that YAML would read as another, an
    alias, a tag, a duplicate key — each located by line)."""
    from pydantic_core import InitErrorDetails, PydanticCustomError

    from harmonise.spec.yamlload import load_yaml_file

    loaded = load_yaml_file(Path(path))  # parsed once, then from the parse cache
    if loaded.issues:
        raise ValidationError.from_exception_data(SurveyDescriptor.__name__, [
            InitErrorDetails(type=PydanticCustomError("yaml", "line {line}: {message}",
                                                      {"line": i.line or "?",
                                                       "message": i.message + (f" — {i.hint}" if i.hint else "")}),
                             loc=tuple(i.path.split(".")) if i.path else (), input=None)
            for i in loaded.issues])
    return SurveyDescriptor.model_validate(loaded.data)
