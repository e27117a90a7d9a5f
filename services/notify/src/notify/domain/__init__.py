"""Pure logic: what the letter says, our reference codes, and how readable the wording is."""
