"""What every graft leaves behind: report.json, a README model card, tokens.tsv."""
