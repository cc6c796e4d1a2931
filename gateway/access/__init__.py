"""Who may reach WAIIDE: credential checks, their verdicts, refusals and the pages they show."""
