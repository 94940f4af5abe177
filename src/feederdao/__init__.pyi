"""Type stub of the top-level API (the package imports these names lazily at run time)."""

from feederdao.domain.clearing import ClearingOptions as ClearingOptions
from feederdao.domain.clearing import ClearingResult as ClearingResult
from feederdao.domain.clearing import WholesalePrices as WholesalePrices
from feederdao.domain.params import GridParameters as GridParameters
from feederdao.errors import FeederDaoError as FeederDaoError
from feederdao.workflows.clearing import Clearing as Clearing
from feederdao.workflows.clearing import Market as Market
from feederdao.workflows.network import OpenNetwork as OpenNetwork
from feederdao.workflows.outputs import read_output as read_output
from feederdao.workflows.studies.dataset import read_study as read_study
from feederdao.workflows.studies.execute import run_spec as run_spec
from feederdao.workflows.studies.spec import load_spec as load_spec
from feederdao.workflows.studies.summary import study_plots as study_plots
from feederdao.workflows.studies.summary import study_summary as study_summary
from feederdao.workflows.study import DayResult as DayResult
from feederdao.workflows.study import Study as Study
from feederdao.workflows.study import StudyInterrupted as StudyInterrupted
from feederdao.workflows.study import StudyProgress as StudyProgress
from feederdao.workflows.study import clear_day as clear_day
from feederdao.workflows.workbench import clear as clear
from feederdao.workflows.workbench import open_market as open_market
from feederdao.workflows.workbench import open_network as open_network
from feederdao.workflows.workbench import run_study as run_study

__version__: str
__all__: list[str]
