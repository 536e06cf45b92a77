"""Cases: which runs are the same case of the same user, and which run came next (issue 18).

A run's case is its parent folder (`cluster/user/.../case/run_007`): people
keep a case's runs side by side. A case moved to another cluster or folder is
still the same case when its runs use the same mesh file (its name) and their
case folders have the same name (`kraken/ana/jet/LES` and `irene/ana/LES`).
Fixes and campaigns are read from the order of a case's runs by `created_at`.

A run *continues* another when one of its parameters is a path into the
other's folder (`initial_solution_file = ../run_006/SOLUT/last.h5`): it
restarts from that run's solution.
"""

from __future__ import annotations

# SQL over a `runs` row: its case folder, and its mesh-and-name key (NULL without a mesh).
PARENT_SQL = r"regexp_replace(run_path, '/[^/]*$', '')"
FOLDER_SQL = r"regexp_extract(run_path, '[^/]*$')"
MESH_CASE_SQL = (
    r"CASE WHEN params->>'mesh_file' IS NOT NULL THEN "
    r"regexp_extract(params->>'mesh_file', '[^/\\]*$') || '|' || "
    rf"regexp_extract({PARENT_SQL}, '[^/]*$') END"
)
# A path into a sibling run's folder (`../run_006/SOLUT/last.h5`), in a parameter's value or
# in the parameters' JSON text: group 1 is the folder's name. Read by fixes and campaigns.
INTO_FOLDER_REGEX = r'\.\./([^/"\\]+)[/\\]'
