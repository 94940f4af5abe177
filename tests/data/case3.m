function mpc = case3
% Three-bus radial test case: slack bus 1, loads at buses 2 and 3 (10 kV).
mpc.version = '2';
mpc.baseMVA = 1;
%% bus data
%	bus_i	type	Pd	Qd	Gs	Bs	area	Vm	Va	baseKV	zone	Vmax	Vmin
mpc.bus = [
	1	3	0	0	0	0	1	1	0	10	1	1.05	0.95;
	2	1	0.2	0.05	0	0	1	1	0	10	1	1.05	0.95;
	3	1	0.3	0.1	0	0	1	1	0	10	1	1.05	0.95;
];
%% generator data
%	bus	Pg	Qg	Qmax	Qmin	Vg	mBase	status	Pmax	Pmin
mpc.gen = [
	1	0	0	10	-10	1	1	1	10	-10;
];
%% branch data
%	fbus	tbus	r	x	b	rateA	rateB	rateC	ratio	angle	status	angmin	angmax
mpc.branch = [
	1	2	0.01	0.02	0	5	5	5	0	0	1	-360	360;
	2	3	0.01	0.02	0	5	5	5	0	0	1	-360	360;
];
