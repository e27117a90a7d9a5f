"""The letter's wording (a Jinja2 template) and the council's details (YAML), kept out of code."""

from __future__ import annotations

from pathlib import Path

import jinja2
import yaml

from notify.domain.letter import CouncilDetails

TEMPLATES_DIR = Path(__file__).parent


def load_council_details(path: Path | None = None) -> CouncilDetails:
    with (path or TEMPLATES_DIR / "council.yaml").open(encoding="utf-8") as source:
        return CouncilDetails.model_validate(yaml.safe_load(source))


def load_letter_template(folder: Path | None = None) -> jinja2.Template:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder or TEMPLATES_DIR),
        autoescape=False,  # plain text: the PDF renderer escapes it for its own markup
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    return environment.get_template("letter.txt.j2")
