"""Cases: which runs are the same case of the same user, and which run came next (issue 18).

A run's case is its parent folder (`cluster/user/.../case/run_007`): people
keep a case's runs side by side. A case moved to another cluster or folder is
still the same case when its runs use the same mesh file (its name) and their
case folders have the same name (`kraken/ana/jet/LES` and `irene/ana/LES`).
Fixes and campaigns are read from the order of a case's runs by `created_at`.

A run *continues* another when one of its parameters is a path into the
other's folder (`initial_solution_file = ../run_006/SOLUT/last.h5`): it
restarts from that run's solution.

What a run's case is depends on its row alone, so the swap derives it once,
as the run's rows go in (`CASE_COLUMNS`), rather than every analysis over
every run: at a million runs the regular expressions, the JSON lookup and the
MD5 of the parameters cost the fixes and campaigns ~2 s a refresh (issue 16).
"""

from __future__ import annotations

# A path into a sibling run's folder (`../run_006/SOLUT/last.h5`), in a parameter's value or
# in the parameters' JSON text: group 1 is the folder's name. Read by fixes and campaigns.
INTO_FOLDER_REGEX = r'\.\./([^/"\\]+)[/\\]'
# SQL over a `runs` row: the run's own folder's name (the last part of its path).
FOLDER_SQL = r"regexp_extract(run_path, '[^/]*$')"
_PARENT_SQL = r"regexp_replace(run_path, '/[^/]*$', '')"

# The columns of `runs` the swap derives from each inserted row (`records.RunRecord`'s
# `case_*` fields and the like), by SQL over its other columns.
CASE_COLUMNS: dict[str, str] = {
    # its case folder
    "case_folder": _PARENT_SQL,
    # its mesh-and-name key: NULL without a mesh
    "mesh_case": (
        r"regexp_extract(params->>'mesh_file', '[^/\\]*$') || '|' || "
        rf"regexp_extract({_PARENT_SQL}, '[^/]*$')"
    ),
    # what tells two parameter sets apart without reading them
    "params_digest": "md5(params::VARCHAR)",
    # the folders its parameters point into
    "points_into": f"regexp_extract_all(params::VARCHAR, '{INTO_FOLDER_REGEX}', 1)",
}
