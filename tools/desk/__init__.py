"""The chief's desk: the vault as a local web application in French (`pieton desk VAULT`).

The same code paths as the command line (extraction, consultation, holds), logged the same
way, with the signed-in person as the author of every action."""
