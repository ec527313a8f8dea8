-- One database per service (plus the simulated providers' sandbox), created on the first start
-- of an empty data volume. Schemas and seed data are applied by the `migrate` service.
CREATE DATABASE orders;
CREATE DATABASE inventory;
CREATE DATABASE payments;
CREATE DATABASE shipping;
CREATE DATABASE notifications;
CREATE DATABASE sandbox;
CREATE DATABASE auth;
